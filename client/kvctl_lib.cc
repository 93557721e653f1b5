#include "client/kvctl_lib.h"

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "client/kvctl_snapshot.h"
#include "server/backup_file.h"
#include "server/backup_restore.h"
#include "server/cluster_spec.h"
#include "gflags/gflags.h"

DEFINE_string(endpoints, "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
              "The cluster's nodes, comma-separated host:port.");
DEFINE_string(timeout, "15s",
              "Give up on a command after this long, retries included "
              "(a duration: 500ms, 15s, 1m).");
DEFINE_string(attempt_timeout, "2s",
              "Deadline of one RPC to one node (a duration).");
DEFINE_string(cacert, "",
              "TLS: verify the nodes' certificates with this CA bundle (PEM). Any of "
              "--cacert, --cert, --key turns TLS on (no --cacert: the system's CAs).");
DEFINE_string(cert, "", "TLS: this client's certificate (PEM), for nodes that require one.");
DEFINE_string(key, "", "TLS: the key of --cert (PEM).");
DEFINE_bool(serializable, false,
            "get, scan: read the first node's own state, without a leader "
            "check (faster; may be stale).");
DEFINE_int32(limit, 0, "scan: print at most this many keys (0: all).");
DEFINE_string(start_after, "",
              "scan: start after this key (exclusive), for paging.");
DEFINE_bool(verbose, false,
            "scan: print key<TAB>version<TAB>value; status: print why an "
            "endpoint is unreachable.");
DEFINE_int64(expect_version, -1,
             "cas: compare the key's version instead of its value (0: the "
             "key must not exist; -1: not given).");
DEFINE_bool(expect_absent, false,
            "cas: the key must not exist (same as --expect_version=0).");
DEFINE_string(write_out, "simple",
              "snapshot status: output format, simple or json (-w is short for it).");
DEFINE_uint64(snapshot_bytes_per_sec, 0,
              "snapshot save: the member's read rate, bytes per second (0: its "
              "default, 64 MiB/s; else at least 65536).");
DEFINE_string(data_dir, "", "snapshot restore: the data dir to write (absent or empty).");
DEFINE_uint64(id, 0, "snapshot restore: this member's id, one of --cluster.");
DEFINE_string(cluster, "",
              "snapshot restore: the new cluster's members, ID=HOST:PORT,... (as the "
              "server's --cluster).");

namespace raftkv::kvctl {
namespace {

using client::Client;

constexpr char kUsage[] =
    R"(kvctl: the command-line client of a raftkv cluster.

Usage: kvctl [flags] COMMAND [ARGS]   (flags may also follow the command;
       "--" ends the flags, e.g. kvctl put -- k -1)

Commands:
  put KEY [VALUE]     Set KEY. Without VALUE, or with VALUE "-", the value is
                      read from stdin up to EOF, byte for byte (binary-safe).
                      Prints "OK <version>".
  get KEY             Print KEY's value: the raw bytes, followed by a newline
                      only when stdout is a terminal. --serializable.
  delete KEY          Remove KEY. Prints "OK 1" if it existed, "OK 0" if not.
  scan [PREFIX]       Print the keys starting with PREFIX (all keys if none)
                      in order, one "KEY<TAB>VALUE" line each;
                      "KEY<TAB>VERSION<TAB>VALUE" with --verbose.
                      --limit=N, --start_after=KEY, --serializable. Keys or
                      values holding tabs or newlines make lines ambiguous:
                      use get for those. A scan of more than one page (1000
                      keys) is not one snapshot.
  cas KEY OLD NEW     Set KEY to NEW if its value is OLD. Instead of OLD:
  cas KEY NEW         --expect_version=N (KEY's version is N) or
                      --expect_absent (KEY does not exist). NEW "-": stdin.
                      Prints "OK <version>"; when the comparison fails, prints
                      KEY's current version and value on stderr, exit 4.
  status              A table of every endpoint: node id, address, role,
                      term, commit index, applied index, leader id, last log
                      index and whether it answered; then a line per
                      snapshot transfer, per alarm ("node N alarm CORRUPT:
                      <reason>") and, if any, the peer messages a node
                      dropped as malformed or contradicting its state.
                      Fails (exit 1) only if no endpoint answered.
  member list         The membership as the leader sees it: one line per
                      member, "ID<TAB>ADDRESS<TAB>voter|learner<TAB>MATCH"
                      (MATCH: the leader's replication progress, "-" if
                      unknown); the leader is marked with "*" after its id.
  member add ID ADDR  Add node ID, listening on ADDR (HOST:PORT), as a
                      learner; it is promoted to voter once caught up. Start
                      the node with --join (it may add itself).
  member promote ID   Make learner ID a voter now.
  member remove ID    Remove node ID (the leader too: it steps down).
                      Membership changes print "OK voters=[..] learners=[..]";
                      one at a time (exit 1 while another is in progress).
  snapshot save FILE  Stream a consistent backup of the whole state machine
                      (data, client sessions) as of one log index from the
                      leader (or from the one member --endpoints names) to
                      FILE: written as FILE.part, synced, verified, then
                      renamed. Prints one line: index, term, keys, bytes,
                      seconds. Writes go on meanwhile (the member reads a
                      RocksDB snapshot at --snapshot_bytes_per_sec).
                      --timeout bounds reaching the member only.
  snapshot status FILE
                      Verify FILE's checksum and print its header: cluster,
                      member, index, term, creation time, membership, keys,
                      bytes (-w json: one JSON object). A truncated or
                      corrupt file: one line saying what is wrong, exit 1.
  snapshot restore FILE --data_dir=DIR --id=N --cluster=ID=HOST:PORT,...
                      Offline: write DIR (absent or empty) so that
                      `server --id=N --cluster=...` starts as member N of a
                      NEW cluster with that membership and FILE's state. Run
                      it once per member, with the same FILE and --cluster:
                      they get the same new cluster id (derived from both),
                      so no member of the old cluster can join them. Refuses
                      a non-empty DIR and a file that does not verify.
  transfer-leader [ID]
                      Move leadership to voter ID (default: the most
                      up-to-date voter). Prints "OK <new leader id>".
  help                This text.

Writes are retried on other nodes, exactly once: a retried write is never
applied twice. Only unavailable nodes and leader changes are retried; a bad
request (e.g. a value over the cluster's --max_value_bytes, checked before it
is sent) fails at once. --timeout bounds the whole command, every call and
retry included (reading stdin excluded). A write that times out may or may not
have been applied.

Exit codes:
  0  success
  1  error: one line "kvctl: <message>" on stderr
  2  usage error (bad command, arguments or flags)
  3  get: the key does not exist
  4  cas: the comparison failed (current state on stderr)
)";

// Flags the user may set: those defined in this file.
bool IsKvctlFlag(const gflags::CommandLineFlagInfo& info) {
  return absl::EndsWith(info.filename, "kvctl_lib.cc");
}

struct UsageError {
  std::string message;
};

// One line: newlines in server messages would break "one line on stderr".
std::string OneLine(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
}

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

class Kvctl {
 public:
  Kvctl(std::istream& in, std::ostream& out, std::ostream& err,
        bool out_is_tty)
      : in_(in), out_(out), err_(err), out_is_tty_(out_is_tty) {}

  int Run(const std::vector<std::string>& args) {
    std::vector<std::string> positional;
    if (std::optional<int> code = ParseFlags(args, &positional)) return *code;
    if (positional.empty()) return Usage("no command given");
    const std::string cmd = positional[0];
    positional.erase(positional.begin());
    if (cmd == "help") return Help();
    if (cmd == "snapshot") return Snapshot(positional);

    using Handler = int (Kvctl::*)(const std::vector<std::string>&);
    static const std::pair<const char*, Handler> kCommands[] = {
        {"put", &Kvctl::Put},       {"get", &Kvctl::Get},
        {"delete", &Kvctl::Delete}, {"scan", &Kvctl::Scan},
        {"cas", &Kvctl::Cas},       {"status", &Kvctl::Status},
        {"member", &Kvctl::Member}, {"transfer-leader", &Kvctl::TransferLeader},
    };
    for (const auto& [name, handler] : kCommands) {
      if (cmd == name) {
        if (int code = Connect(); code != kExitOk) return code;
        return (this->*handler)(positional);
      }
    }
    return Usage(absl::StrCat("unknown command ", Quote(cmd)));
  }

 private:
  // Sets the flags in `args` (gflags syntax: --name=value, --name value,
  // --bool, --nobool; one dash works too) and collects the rest. Returns
  // an exit code if kvctl is done (--help, a usage error).
  std::optional<int> ParseFlags(const std::vector<std::string>& args,
                                std::vector<std::string>* positional) {
    bool flags_done = false;
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (flags_done || a.size() < 2 || a[0] != '-') {
        positional->push_back(a);
        continue;
      }
      if (a == "--") {
        flags_done = true;
        continue;
      }
      std::string body = a.substr(a[1] == '-' ? 2 : 1);
      std::optional<std::string> value;
      if (size_t eq = body.find('='); eq != std::string::npos) {
        value = body.substr(eq + 1);
        body.resize(eq);
      }
      if (body == "w") body = "write_out";  // etcdctl's -w
      const std::string& name = body;
      if (name == "help" || name == "h" || name == "helpfull") {
        return Help();
      }
      gflags::CommandLineFlagInfo info;
      bool known = gflags::GetCommandLineFlagInfo(name.c_str(), &info) &&
                   IsKvctlFlag(info);
      if (!known && !value.has_value() && absl::StartsWith(name, "no") &&
          gflags::GetCommandLineFlagInfo(name.c_str() + 2, &info) &&
          IsKvctlFlag(info) && info.type == "bool") {
        gflags::SetCommandLineOption(info.name.c_str(), "false");
        continue;
      }
      if (!known) return Usage(absl::StrCat("unknown flag --", name));
      if (!value.has_value()) {
        if (info.type == "bool") {
          value = "true";
        } else if (i + 1 < args.size()) {
          value = args[++i];
        } else {
          return FlagError(name, "needs a value");
        }
      }
      if (gflags::SetCommandLineOption(name.c_str(), value->c_str()).empty()) {
        return FlagError(name, absl::StrCat("not a", info.type == "int32" || info.type == "int64" ? "n " : " ",
                                            info.type, ": ", Quote(*value)));
      }
    }
    return std::nullopt;
  }

  // Checks the connection flags; the Client itself is made on first use
  // (client()), so that --timeout starts with the first call.
  int Connect() {
    if (int code = ParseDuration("timeout", FLAGS_timeout, &options_.total_timeout);
        code != kExitOk) {
      return code;
    }
    if (int code =
            ParseDuration("attempt_timeout", FLAGS_attempt_timeout, &options_.attempt_timeout);
        code != kExitOk) {
      return code;
    }
    options_.endpoints = client::SplitEndpoints(FLAGS_endpoints);
    // Everything else is valid, so an error is about the endpoints.
    if (absl::Status s = options_.Validate(); !s.ok()) {
      return FlagError("endpoints", s.message());
    }
    options_.tls = {FLAGS_cacert, FLAGS_cert, FLAGS_key};
    auto credentials = client::ChannelCredentialsFor(options_.tls);
    if (!credentials.ok()) return Error(absl::StrCat("TLS: ", credentials.status().message()));
    credentials_ = std::move(*credentials);
    return kExitOk;
  }

  // A positive duration ("500ms", "15s", "1m") from flag --name.
  int ParseDuration(const char* name, const std::string& value, absl::Duration* d) {
    if (!absl::ParseDuration(value, d) || *d == absl::InfiniteDuration()) {
      return FlagError(name, absl::StrCat("not a duration: ", Quote(value),
                                          " (e.g. 500ms, 15s, 1m)"));
    }
    if (*d <= absl::ZeroDuration()) {
      return FlagError(name, absl::StrCat("must be positive, got ", value));
    }
    return kExitOk;
  }

  // The Client, made on first use: the whole command (every call from now
  // on) has --timeout.
  Client& client() {
    if (client_ == nullptr) {
      client::ClientOptions options = options_;
      options.deadline = absl::Now() + options.total_timeout;
      auto c = Client::Create(std::move(options));
      // Connect() validated the same options.
      if (!c.ok()) std::abort();
      client_ = std::move(*c);
    }
    return *client_;
  }

  int Put(const std::vector<std::string>& args) {
    if (args.empty() || args.size() > 2) return Usage("usage: put KEY [VALUE]");
    std::string value;
    if (args.size() == 1 || args[1] == "-") {
      if (!ReadStdin(&value)) return Error("cannot read the value from stdin");
    } else {
      value = args[1];
    }
    auto version = client().Put(args[0], value);
    if (!version.ok()) return Error(version.status());
    out_ << "OK " << *version << "\n";
    return Flush();
  }

  int Get(const std::vector<std::string>& args) {
    if (args.size() != 1) return Usage("usage: get KEY");
    auto kv = client().Get(args[0], FLAGS_serializable);
    if (kv.status().code() == absl::StatusCode::kNotFound) {
      err_ << "kvctl: key not found: " << Quote(args[0]) << "\n";
      return kExitNotFound;
    }
    if (!kv.ok()) return Error(kv.status());
    out_.write(kv->value.data(), kv->value.size());
    if (out_is_tty_) out_ << "\n";
    return Flush();
  }

  int Delete(const std::vector<std::string>& args) {
    if (args.size() != 1) return Usage("usage: delete KEY");
    auto deleted = client().Delete(args[0]);
    if (!deleted.ok()) return Error(deleted.status());
    out_ << "OK " << (*deleted ? 1 : 0) << "\n";
    return Flush();
  }

  int Scan(const std::vector<std::string>& args) {
    if (args.size() > 1) return Usage("usage: scan [PREFIX]");
    if (FLAGS_limit < 0) {
      return FlagError("limit", absl::StrCat("must be 0 or more, got ", FLAGS_limit));
    }
    const std::string prefix = args.empty() ? "" : args[0];
    const uint64_t limit = FLAGS_limit;  // 0: all
    std::string start_after = FLAGS_start_after;
    uint64_t printed = 0;
    while (true) {
      constexpr uint64_t kPage = 1000;
      uint64_t page = kPage;
      if (limit != 0) page = std::min(kPage, limit - printed);
      auto result = client().Scan(prefix, static_cast<uint32_t>(page),
                                  start_after, FLAGS_serializable);
      if (!result.ok()) return Error(result.status());
      for (const client::KeyValue& kv : result->kvs) {
        out_.write(kv.key.data(), kv.key.size());
        out_ << '\t';
        if (FLAGS_verbose) out_ << kv.version << '\t';
        out_.write(kv.value.data(), kv.value.size());
        out_ << '\n';
      }
      printed += result->kvs.size();
      if (!result->more || result->kvs.empty()) break;
      start_after = result->kvs.back().key;
      if (limit != 0 && printed >= limit) {
        if (FLAGS_verbose) {
          err_ << "kvctl: stopped at --limit=" << limit
               << "; more keys follow " << Quote(start_after) << "\n";
        }
        break;
      }
    }
    return Flush();
  }

  int Cas(const std::vector<std::string>& args) {
    const bool by_version = FLAGS_expect_version >= 0;
    if (FLAGS_expect_version < -1) {
      return FlagError("expect_version",
                       absl::StrCat("must be 0 or more, got ", FLAGS_expect_version));
    }
    if (by_version && FLAGS_expect_absent) {
      return FlagError("expect_absent", "give --expect_version or --expect_absent, not both");
    }
    std::optional<client::Expected> expected;
    std::string key, new_value;
    if (by_version || FLAGS_expect_absent) {
      if (args.size() != 2) {
        return Usage("usage: cas KEY NEW (with --expect_version or "
                     "--expect_absent)");
      }
      expected = FLAGS_expect_absent
                     ? client::Expected::Absent()
                     : client::Expected::Version(FLAGS_expect_version);
      key = args[0];
      new_value = args[1];
    } else {
      if (args.size() != 3) {
        return Usage("usage: cas KEY OLD NEW, or cas KEY NEW with "
                     "--expect_version=N or --expect_absent");
      }
      expected = client::Expected::Value(args[1]);
      key = args[0];
      new_value = args[2];
    }
    if (new_value == "-" && !ReadStdin(&new_value)) {
      return Error("cannot read the new value from stdin");
    }
    auto result = client().CompareAndSwap(key, *expected, new_value);
    if (!result.ok()) return Error(result.status());
    if (!result->succeeded) {
      if (result->current.has_value()) {
        err_ << "kvctl: compare failed: " << Quote(key) << " has version "
             << result->current->version << ", value "
             << Quote(result->current->value) << "\n";
      } else {
        err_ << "kvctl: compare failed: " << Quote(key)
             << " does not exist\n";
      }
      return kExitCompareFailed;
    }
    out_ << "OK " << result->version << "\n";
    return Flush();
  }

  int Status(const std::vector<std::string>& args) {
    if (!args.empty()) return Usage("usage: status");
    std::vector<client::EndpointStatus> all = client().ClusterStatus();
    std::vector<std::vector<std::string>> rows = {
        {"ID", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LEADER",
         "LAST", "SNAPSHOT", "REACHABLE"}};
    auto num = [](uint64_t v) { return absl::StrCat(v); };
    bool any = false;
    for (const client::EndpointStatus& e : all) {
      if (e.reachable) {
        any = true;
        const adminpb::StatusResponse& s = e.status;
        rows.push_back({num(s.node_id()), e.endpoint, s.removed() ? std::string("removed") : s.role(), num(s.term()),
                        num(s.commit_index()), num(s.applied_index()),
                        s.leader_id() == 0 ? "-" : num(s.leader_id()),
                        num(s.last_index()),
                        absl::StrCat(s.snapshot_index(), "/", s.snapshot_term()), "yes"});
      } else {
        rows.push_back({"-", e.endpoint, "-", "-", "-", "-", "-", "-", "-",
                        absl::StrCat("no (", absl::StatusCodeToString(
                                                 e.error.code()),
                                     ")")});
      }
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) {
        width[i] = std::max(width[i], row[i].size());
      }
    }
    for (const auto& row : rows) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
      }
      out_ << line << "\n";
    }
    // Snapshot transfers in progress (index/term above is the node's last
    // snapshot, i.e. where its log starts).
    for (const client::EndpointStatus& e : all) {
      if (!e.reachable) continue;
      for (const auto& t : e.status.snapshot_transfers()) {
        out_ << "node " << e.status.node_id() << " snapshot transfer " << t << "\n";
      }
      for (const auto& a : e.status.alarms()) {
        out_ << "node " << e.status.node_id() << " alarm " << OneLine(a) << "\n";
      }
      if (e.status.rejected_peer_messages() > 0) {
        out_ << "node " << e.status.node_id() << " rejected_peer_messages "
             << e.status.rejected_peer_messages()
             << " (malformed or contradicting its state; dropped, see its log)\n";
      }
      std::vector<std::string> refused;
      for (const auto& [reason, n] : e.status.peer_refusals()) {
        if (n > 0) refused.push_back(absl::StrCat(reason, "=", n));
      }
      if (!refused.empty()) {
        std::sort(refused.begin(), refused.end());
        out_ << "node " << e.status.node_id() << " peer_refusals " << absl::StrJoin(refused, " ")
             << " (peer traffic refused: another cluster, a wrong id or incarnation, a removed "
                "member; see its log)\n";
      }
    }
    if (FLAGS_verbose) {
      for (const client::EndpointStatus& e : all) {
        if (e.reachable) {
          auto list = [](const auto& m) {
            std::vector<std::string> out;
            for (const auto& [id, inc] : m) out.push_back(absl::StrCat(id, "=", inc));
            std::sort(out.begin(), out.end());
            return absl::StrJoin(out, " ");
          };
          out_ << "node " << e.status.node_id() << " incarnation " << e.status.incarnation()
               << "; recorded: " << list(e.status.recorded_incarnations())
               << "; heard: " << list(e.status.peer_incarnations()) << "\n";
        }
        if (!e.reachable) {
          err_ << "kvctl: " << e.endpoint << ": " << OneLine(e.error.ToString())
               << "\n";
        }
      }
    }
    if (int code = Flush(); code != kExitOk) return code;
    if (!any) return NoneAnswered(all, "no endpoint answered among ");
    return kExitOk;
  }

  // The error when no endpoint of `all` answered as needed: a TLS problem
  // (the same at every endpoint, as a rule) in its own words, else `what`
  // and the endpoints.
  int NoneAnswered(const std::vector<client::EndpointStatus>& all, absl::string_view what,
                   absl::string_view hint = "") {
    for (const client::EndpointStatus& e : all) {
      if (absl::IsUnauthenticated(e.error)) return Error(e.error);
    }
    return Error(absl::StrCat(what, FLAGS_endpoints, hint));
  }

  static bool ParseId(const std::string& s, uint64_t* id) {
    return absl::SimpleAtoi(s, id) && *id != 0;
  }

  int PrintMembership(const client::Membership& m) {
    out_ << "OK voters=[" << absl::StrJoin(m.voters, ",") << "] learners=["
         << absl::StrJoin(m.learners, ",") << "]\n";
    return Flush();
  }

  int Member(const std::vector<std::string>& args) {
    const char* kUsageMember = "usage: member list | add ID ADDR | promote ID | remove ID";
    if (args.empty()) return Usage(kUsageMember);
    const std::string& sub = args[0];
    uint64_t id = 0;
    if (sub == "list") {
      if (args.size() != 1) return Usage(kUsageMember);
      return MemberList();
    }
    if (sub == "add") {
      if (args.size() != 3 || !ParseId(args[1], &id)) return Usage("usage: member add ID ADDR");
      auto m = client().AddMember(id, args[2]);
      if (!m.ok()) return Error(m.status());
      return PrintMembership(*m);
    }
    if (sub == "promote" || sub == "remove") {
      if (args.size() != 2 || !ParseId(args[1], &id)) {
        return Usage(absl::StrCat("usage: member ", sub, " ID"));
      }
      auto m = sub == "promote" ? client().PromoteMember(id) : client().RemoveMember(id);
      if (!m.ok()) return Error(m.status());
      return PrintMembership(*m);
    }
    return Usage(kUsageMember);
  }

  int MemberList() {
    std::vector<client::EndpointStatus> all = client().ClusterStatus();
    const adminpb::StatusResponse* best = nullptr;
    for (const client::EndpointStatus& e : all) {
      if (!e.reachable) continue;
      if (e.status.role() == "leader") {
        best = &e.status;
        break;
      }
      if (best == nullptr && !e.status.removed()) best = &e.status;
    }
    if (best == nullptr) return NoneAnswered(all, "no endpoint answered among ");
    if (best->role() != "leader") {
      err_ << "kvctl: no leader answered; membership as node " << best->node_id()
           << " sees it\n";
    }
    for (const auto& m : best->members()) {
      std::string match = "-";
      for (const auto& p : best->progress()) {
        if (p.id() == m.id()) match = absl::StrCat(p.match());
      }
      out_ << m.id() << (m.id() == best->leader_id() ? "*" : "") << "\t" << m.address()
           << "\t" << (m.voter() ? "voter" : "learner") << "\t" << match << "\n";
    }
    return Flush();
  }

  int TransferLeader(const std::vector<std::string>& args) {
    uint64_t id = 0;
    if (args.size() > 1 || (args.size() == 1 && !ParseId(args[0], &id))) {
      return Usage("usage: transfer-leader [ID]");
    }
    auto leader = client().TransferLeader(id);
    if (!leader.ok()) return Error(leader.status());
    out_ << "OK " << *leader << "\n";
    return Flush();
  }

  int Snapshot(const std::vector<std::string>& args) {
    const char* kUsageSnapshot =
        "usage: snapshot save FILE | status FILE | restore FILE --data_dir=DIR --id=N "
        "--cluster=ID=HOST:PORT,...";
    if (args.size() != 2) return Usage(kUsageSnapshot);
    const std::string& sub = args[0];
    const std::string& file = args[1];
    if (sub == "save") {
      if (int code = Connect(); code != kExitOk) return code;
      std::string endpoint = options_.endpoints[0];
      if (options_.endpoints.size() > 1) {
        endpoint.clear();
        std::vector<client::EndpointStatus> all = client().ClusterStatus();
        for (const client::EndpointStatus& e : all) {
          if (e.reachable && e.status.role() == "leader") endpoint = e.endpoint;
        }
        if (endpoint.empty()) {
          return NoneAnswered(all, "no leader answered among ",
                              "; name one member with --endpoints to save from it");
        }
      }
      auto saved = SaveBackup(endpoint, credentials_, file, FLAGS_snapshot_bytes_per_sec,
                              options_.total_timeout);
      if (!saved.ok()) return Error(saved.status());
      out_ << "saved " << file << " from " << endpoint << ": index "
           << saved->info.header.applied_index() << ", term " << saved->info.header.term()
           << ", " << saved->info.keys << " keys, " << saved->info.bytes << " bytes, "
           << absl::StrFormat("%.2f", absl::ToDoubleSeconds(saved->elapsed)) << " s\n";
      return Flush();
    }
    if (sub == "status") {
      if (FLAGS_write_out != "simple" && FLAGS_write_out != "json") {
        return FlagError("write_out", absl::StrCat("must be simple or json, got ",
                                                   Quote(FLAGS_write_out)));
      }
      auto info = server::VerifyBackup(file);
      if (!info.ok()) return Error(info.status());
      out_ << DescribeBackup(*info, FLAGS_write_out == "json");
      return Flush();
    }
    if (sub == "restore") {
      server::RestoreOptions ro;
      ro.backup_path = file;
      ro.data_dir = FLAGS_data_dir;
      ro.node_id = FLAGS_id;
      if (FLAGS_data_dir.empty()) return FlagError("data_dir", "is required");
      if (FLAGS_id == 0) return FlagError("id", "is required (a node id from --cluster)");
      auto spec = server::ParseClusterSpec(FLAGS_cluster);
      if (!spec.ok()) return FlagError("cluster", spec.status().message());
      ro.cluster = *spec;
      if (absl::Status s = ro.Validate(); !s.ok()) return Usage(s.message());
      auto r = server::RestoreBackup(ro);
      if (!r.ok()) return Error(r.status());
      out_ << "restored " << file << " (index " << r->backup.header.applied_index()
           << ", term " << r->backup.header.term() << ", " << r->records << " records) into "
           << FLAGS_data_dir << ": node " << FLAGS_id << " of new cluster " << r->cluster_id
           << "; start it with --id=" << FLAGS_id
           << " --cluster=" << server::FormatClusterSpec(*spec) << "\n";
      return Flush();
    }
    return Usage(kUsageSnapshot);
  }

  // All of stdin, in blocks (a byte at a time took seconds for 64 MiB),
  // into a string sized up front when stdin is a file.
  bool ReadStdin(std::string* value) {
    value->clear();
    const std::streampos here = in_.tellg();
    if (here != std::streampos(-1) && in_.seekg(0, std::ios::end)) {
      const std::streampos end = in_.tellg();
      // One more byte than the file holds, so the first read meets EOF.
      if (end != std::streampos(-1) && end > here) value->reserve(end - here + 1);
      in_.seekg(here);
    }
    in_.clear();
    size_t size = 0;
    while (in_) {
      if (value->capacity() == size) value->reserve(std::max<size_t>(2 * size, 1 << 20));
      value->resize(value->capacity());
      in_.read(value->data() + size, static_cast<std::streamsize>(value->size() - size));
      size += static_cast<size_t>(in_.gcount());
    }
    value->resize(size);
    return !in_.bad();
  }

  int Help() {
    out_ << kUsage << "\nFlags:\n";
    std::vector<gflags::CommandLineFlagInfo> flags;
    gflags::GetAllFlags(&flags);
    for (const auto& f : flags) {
      if (IsKvctlFlag(f)) out_ << gflags::DescribeOneFlag(f);
    }
    return Flush();
  }

  // A bad flag: "kvctl: --NAME: message", exit 2.
  int FlagError(absl::string_view name, absl::string_view message) {
    err_ << "kvctl: --" << name << ": " << OneLine(message) << "\n";
    return kExitUsage;
  }

  int Usage(absl::string_view message) {
    err_ << "kvctl: " << OneLine(message) << " (see kvctl --help)\n";
    return kExitUsage;
  }

  int Error(const absl::Status& status) {
    return Error(std::string(status.message()));
  }
  int Error(absl::string_view message) {
    err_ << "kvctl: " << OneLine(message) << "\n";
    return kExitError;
  }

  int Flush() {
    out_.flush();
    if (!out_) return Error("cannot write to stdout");
    return kExitOk;
  }

  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  const bool out_is_tty_;
  client::ClientOptions options_;  // from the flags, by Connect()
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // from options_.tls, by Connect()
  std::unique_ptr<Client> client_;
};

}  // namespace

const char* Usage() { return kUsage; }

int RunKvctl(const std::vector<std::string>& args, std::istream& in,
             std::ostream& out, std::ostream& err, bool out_is_tty) {
  gflags::FlagSaver restore_flags;
  return Kvctl(in, out, err, out_is_tty).Run(args);
}

}  // namespace raftkv::kvctl

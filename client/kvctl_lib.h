// kvctl's command logic, as a library so tests can run it in-process.
//
// RunKvctl parses the arguments (kvctl's gflags, defined in kvctl_lib.cc, in
// any position; "--" ends the flags), makes a raftkv::client::Client from
// --endpoints and the timeout flags, runs one command and returns the exit
// code. It reads only `in`, writes only `out` and `err`, and restores every
// flag to its previous value before returning, so it may be called again.
// Not thread-safe (flags are process-global): one call at a time.
#ifndef RAFTKV_CLIENT_KVCTL_LIB_H_
#define RAFTKV_CLIENT_KVCTL_LIB_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace raftkv::kvctl {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;          // "kvctl: <message>" on stderr
inline constexpr int kExitUsage = 2;          // bad command line
inline constexpr int kExitNotFound = 3;       // get: no such key
inline constexpr int kExitCompareFailed = 4;  // cas: the comparison failed

// The usage text (commands, output formats, exit codes), without the flag
// list; `kvctl --help` prints it followed by the flags.
const char* Usage();

// `args` are the command-line arguments after the program name. `out_is_tty`
// says whether `out` is a terminal: `get` then ends the value with a newline.
int RunKvctl(const std::vector<std::string>& args, std::istream& in,
             std::ostream& out, std::ostream& err, bool out_is_tty);

}  // namespace raftkv::kvctl

#endif  // RAFTKV_CLIENT_KVCTL_LIB_H_

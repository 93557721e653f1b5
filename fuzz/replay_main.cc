// The main of a fuzz target's replay test (fuzz/fuzz.bzl), for builds
// without libFuzzer: runs LLVMFuzzerTestOneInput on every file of the given
// files and directories (the seed corpus and the crash regressions), then on
// --mutations pseudo-random mutations of them (seeded by --seed, so a run is
// repeatable), stopping early after --max_seconds. A crash, sanitizer report
// or CHECK failure fails the test; the input that crashed is then written to
// $TEST_UNDECLARED_OUTPUTS_DIR/crash_input when that is set (Bazel keeps it
// in the test's outputs.zip), else to ./crash_input.
//
//   replay [--mutations=N] [--seed=S] [--max_seconds=T] PATH...
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Set when linked with a sanitizer runtime: called before a report exits.
extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace {

struct Input {
  std::string name;
  std::string bytes;
};

bool ReadFile(const std::filesystem::path& p, std::string* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return true;
}

// Regular files under `path` (or `path` itself), sorted for a stable order.
std::vector<std::filesystem::path> FilesUnder(const std::string& path) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    out.push_back(path);
  } else if (std::filesystem::is_directory(path, ec)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// libFuzzer-like mutations: bit flips, interesting bytes, inserts, deletes,
// copies within the input and splices with another input.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string Mutate(const std::vector<Input>& inputs, size_t max_size) {
    std::string s = inputs.empty() ? "" : inputs[Uniform(inputs.size())].bytes;
    for (int n = 1 + Uniform(4); n > 0; --n) Once(inputs, &s);
    if (s.size() > max_size) s.resize(max_size);
    return s;
  }

 private:
  size_t Uniform(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  char Byte() { return static_cast<char>(Uniform(256)); }

  void Once(const std::vector<Input>& inputs, std::string* s) {
    static const unsigned char kInteresting[] = {0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0x10, 0x40};
    const size_t n = s->size();
    switch (Uniform(9)) {
      case 0:
        if (n > 0) (*s)[Uniform(n)] ^= static_cast<char>(1 << Uniform(8));
        break;
      case 1:
        if (n > 0) (*s)[Uniform(n)] = Byte();
        break;
      case 2:
        if (n > 0) (*s)[Uniform(n)] = static_cast<char>(kInteresting[Uniform(sizeof(kInteresting))]);
        break;
      case 3: {  // insert random bytes
        std::string add;
        for (size_t k = 1 + Uniform(8); k > 0; --k) add.push_back(Byte());
        s->insert(Uniform(n + 1), add);
        break;
      }
      case 4:  // delete a range
        if (n > 0) {
          const size_t at = Uniform(n);
          s->erase(at, 1 + Uniform(std::min<size_t>(n - at, 16)));
        }
        break;
      case 5:  // copy a range elsewhere
        if (n > 0) {
          const size_t at = Uniform(n);
          const std::string part = s->substr(at, 1 + Uniform(std::min<size_t>(n - at, 32)));
          s->insert(Uniform(n + 1), part);
        }
        break;
      case 6:  // truncate
        s->resize(Uniform(n + 1));
        break;
      case 7:  // splice: our prefix, another input's suffix
        if (!inputs.empty()) {
          const std::string& o = inputs[Uniform(inputs.size())].bytes;
          *s = s->substr(0, Uniform(n + 1)) + o.substr(Uniform(o.size() + 1));
        }
        break;
      default:  // overwrite a byte run with one value
        if (n > 0) {
          const size_t at = Uniform(n);
          const char c = static_cast<char>(kInteresting[Uniform(sizeof(kInteresting))]);
          for (size_t k = at, e = std::min(n, at + 1 + Uniform(8)); k < e; ++k) (*s)[k] = c;
        }
        break;
    }
  }

  std::mt19937_64 rng_;
};

bool Flag(const char* arg, const char* name, uint64_t* out) {
  const size_t len = std::strlen(name);
  if (std::strncmp(arg, name, len) != 0 || arg[len] != '=') return false;
  *out = std::strtoull(arg + len + 1, nullptr, 10);
  return true;
}

// The input being run, and where to save it if it crashes (set up before
// any input runs; read by the crash handlers, which may only make
// async-signal-safe calls).
const std::string* g_current = nullptr;
char g_crash_path[4096];

void SaveCrashInput() {
  static volatile sig_atomic_t saved = 0;
  if (saved || g_current == nullptr) return;
  saved = 1;
  const int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < g_current->size()) {
    const ssize_t n = write(fd, g_current->data() + done, g_current->size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  const char msg[] = "\n*** the crashing input is saved in ";
  (void)!write(2, msg, sizeof(msg) - 1);
  (void)!write(2, g_crash_path, strlen(g_crash_path));
  (void)!write(2, "\n", 1);
}

void OnSignal(int sig) {
  SaveCrashInput();
  signal(sig, SIG_DFL);
  raise(sig);
}

void Run(const std::string& bytes) {
  g_current = &bytes;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mutations = 1000, seed = 1, max_seconds = 10;
  std::vector<Input> inputs;
  for (int i = 1; i < argc; ++i) {
    if (Flag(argv[i], "--mutations", &mutations) || Flag(argv[i], "--seed", &seed) ||
        Flag(argv[i], "--max_seconds", &max_seconds)) {
      continue;
    }
    if (argv[i][0] == '-') {
      std::cerr << "unknown flag " << argv[i] << "\n";
      return 2;
    }
    for (const auto& p : FilesUnder(argv[i])) {
      Input in{p.string(), ""};
      if (!ReadFile(p, &in.bytes)) {
        std::cerr << "cannot read " << p << "\n";
        return 2;
      }
      inputs.push_back(std::move(in));
    }
  }
  if (inputs.empty()) {
    std::cerr << "no inputs: give the seed corpus (a directory of files)\n";
    return 2;
  }
  const char* out_dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  snprintf(g_crash_path, sizeof(g_crash_path), "%s/crash_input", out_dir ? out_dir : ".");
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, OnSignal);
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(SaveCrashInput);

  const auto start = std::chrono::steady_clock::now();
  size_t max_size = 64;
  for (const Input& in : inputs) {
    std::cerr << "replaying " << in.name << " (" << in.bytes.size() << " bytes)\n";
    Run(in.bytes);
    max_size = std::max(max_size, 2 * in.bytes.size());
  }
  Mutator mutator(seed);
  uint64_t done = 0;
  for (; done < mutations; ++done) {
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(max_seconds)) {
      std::cerr << "stopping after " << max_seconds << " s\n";
      break;
    }
    const std::string m = mutator.Mutate(inputs, max_size);
    Run(m);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "ok: " << inputs.size() << " files and " << done << " mutations (seed " << seed
            << ") in " << secs << " s\n";
  return 0;
}

"""raftkv_fuzzer: a libFuzzer target and the replay test that runs it in CI.

raftkv_fuzzer(name, srcs, deps, corpus, regressions) declares
  <name>_lib          the target's LLVMFuzzerTestOneInput (alwayslink);
  <name>              the fuzz binary: with --config=fuzz (tools/fuzz) linked
                      with libFuzzer's main, otherwise with the replay main.
                      Tagged manual: `bazel build //...` leaves it alone;
  <name>_replay_test  a cc_test running every file of `corpus` and
                      `regressions` (directories of this package), then
                      `mutations` seeded mutations of them (fuzz/replay_main.cc).
"""

def raftkv_fuzzer(
        name,
        srcs,
        deps = [],
        corpus = None,
        regressions = None,
        mutations = 1000,
        size = "small",
        data = []):
    corpus = corpus or "corpus/" + name
    regressions = regressions or "regressions/" + name
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        deps = deps + ["//fuzz:fuzz_input"],
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [":" + name + "_lib"] + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual", "fuzzer"],
    )
    pkg = native.package_name()
    native.cc_test(
        name = name + "_replay_test",
        size = size,
        deps = [":" + name + "_lib", "//fuzz:replay_main"],
        data = data + native.glob(
            [corpus + "/**", regressions + "/**"],
            allow_empty = True,
        ),
        # Thread stacks are reused rather than unmapped: a RocksDB open
        # starts a thread per column family and table-opening thread.
        env = {"GLIBC_TUNABLES": "glibc.pthread.stack_cache_size=536870912"},
        args = [
            "--mutations=%d" % mutations,
            pkg + "/" + corpus,
            pkg + "/" + regressions,
        ],
    )

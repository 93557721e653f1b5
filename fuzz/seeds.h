// Seed corpora, written by a small generator per package:
//
//   bazel run //raft/fuzz:make_seeds -- $PWD/raft/fuzz/corpus
//
// A generator links //fuzz:seeds_main and defines MakeSeeds(); each seed
// goes to <dir>/<target>/<name> (existing files are overwritten, others
// kept). Seeds are deterministic: regenerating changes nothing.
#ifndef RAFTKV_FUZZ_SEEDS_H_
#define RAFTKV_FUZZ_SEEDS_H_

#include <map>
#include <string>

namespace raftkv::fuzz {

// target -> seed name -> bytes.
using Seeds = std::map<std::string, std::map<std::string, std::string>>;

// Defined by each generator.
Seeds MakeSeeds();

}  // namespace raftkv::fuzz

#endif  // RAFTKV_FUZZ_SEEDS_H_

// A brute-force reference for the linearizability checker (checker.h), for
// tests only: the model checker.h describes, written plainly and apart from
// the checker's code, to compare verdicts on small histories.
//
// Per key it tries every order of the operations (and every subset of the
// ones with an unknown outcome; an included one must take effect), dropping
// an order as soon as a prefix of it fails, with no memoization and no
// preprocessing beyond deriving each key's operations (a scan's answer per
// key; each read's bounds from its member's earlier reads). Log indexes are
// checked per order by solving its constraints: the least assignment over
// indexes c + d*eps (eps infinitesimal, so strict bounds over the reals),
// rather than by the checker's running bounds. A failed CAS whose answer
// carries no version is not used to exclude a version (as in the checker).
//
// Exponential: for histories of a few operations per key.
#ifndef RAFTKV_TESTS_JEPSEN_REFERENCE_CHECKER_H_
#define RAFTKV_TESTS_JEPSEN_REFERENCE_CHECKER_H_

#include <optional>
#include <vector>

#include "tests/jepsen/history.h"

namespace raftkv::jepsen {

// Whether `history` is linearizable in the model of checker.h; nullopt when
// some key has more than `max_ops_per_key` operations (too big to try).
std::optional<bool> ReferenceLinearizable(const std::vector<Op>& history,
                                          size_t max_ops_per_key = 12);

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_REFERENCE_CHECKER_H_

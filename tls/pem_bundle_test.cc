#include "tls/pem_bundle.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace raftkv::tls {
namespace {


// Certificates made once per test binary by tools/make_certs.
class PemBundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    const std::string tool = "tools/make_certs";
    Run(absl::StrCat(tool, " ", *dir_, " node client"));
    Run(absl::StrCat("CERT_EXPIRED=1 ", tool, " ", *dir_, " expired"));
    Run(absl::StrCat(tool, " ", *dir_, "/other node"));
  }
  static void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }
  static std::string Read(const std::string& name) {
    std::ifstream in(F(name));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void Write(const std::string& name, const std::string& text) {
    std::ofstream(F(name)) << text;
  }
  static std::string* dir_;
};
std::string* PemBundleTest::dir_ = nullptr;

TEST_F(PemBundleTest, LoadsAMatchingCertificateKeyAndCa) {
  absl::StatusOr<PemBundle> b = LoadPemBundle({F("node.pem"), F("node-key.pem"), {F("ca.pem")}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->cert_chain, Read("node.pem"));
  EXPECT_EQ(b->private_key, Read("node-key.pem"));
  EXPECT_EQ(b->ca, Read("ca.pem"));
  EXPECT_NE(b->subject.find("CN=node"), std::string::npos) << b->subject;
  EXPECT_GT(b->not_after, absl::Now() + absl::Hours(24 * 300));
}

TEST_F(PemBundleTest, ConcatenatesCaFiles) {
  absl::StatusOr<PemBundle> b = LoadPemBundle({"", "", {F("ca.pem"), F("other/ca.pem")}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ca, Read("ca.pem") + Read("other/ca.pem"));
  EXPECT_TRUE(b->cert_chain.empty());
}

TEST_F(PemBundleTest, RefusesAKeyOfAnotherCertificate) {
  absl::StatusOr<PemBundle> b = LoadPemBundle({F("node.pem"), F("client-key.pem"), {}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("is not the key of certificate file"), std::string::npos)
      << b.status();
}

TEST_F(PemBundleTest, RefusesAnExpiredCertificate) {
  absl::StatusOr<PemBundle> b = LoadPemBundle({F("expired.pem"), F("expired-key.pem"), {}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("expired at"), std::string::npos) << b.status();
  // ... and one not valid yet.
  b = LoadPemBundle({F("node.pem"), F("node-key.pem"), {}}, absl::Now() - absl::Hours(48));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("is not valid before"), std::string::npos) << b.status();
}

TEST_F(PemBundleTest, RefusesGarbageTruncatedAndMissingFiles) {
  Write("garbage.pem", "not a certificate\n");
  const std::string cert = Read("node.pem");
  Write("truncated.pem", cert.substr(0, cert.size() / 2));
  EXPECT_TRUE(absl::IsInvalidArgument(
      LoadPemBundle({F("garbage.pem"), F("node-key.pem"), {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      LoadPemBundle({F("truncated.pem"), F("node-key.pem"), {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      LoadPemBundle({F("node.pem"), F("garbage.pem"), {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(LoadPemBundle({"", "", {F("garbage.pem")}}).status()));
  absl::Status missing = LoadPemBundle({F("nope.pem"), F("node-key.pem"), {}}).status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find("nope.pem"), std::string::npos) << missing;
  EXPECT_FALSE(LoadPemBundle({F("node.pem"), "", {}}).ok());
  EXPECT_FALSE(LoadPemBundle({"", F("node-key.pem"), {}}).ok());
}

TEST_F(PemBundleTest, VerifiesAgainstItsCaOnly) {
  EXPECT_TRUE(VerifyCertificate(Read("client.pem"), Read("ca.pem")).ok());
  absl::Status other = VerifyCertificate(Read("other/node.pem"), Read("ca.pem"));
  EXPECT_TRUE(absl::IsPermissionDenied(other)) << other;
  absl::Status expired = VerifyCertificate(Read("expired.pem"), Read("ca.pem"));
  EXPECT_TRUE(absl::IsPermissionDenied(expired)) << expired;
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired;
  EXPECT_TRUE(absl::IsPermissionDenied(VerifyCertificate("", Read("ca.pem"))));
  // Either CA of a bundle will do.
  EXPECT_TRUE(VerifyCertificate(Read("other/node.pem"), Read("ca.pem") + Read("other/ca.pem")).ok());
}

}  // namespace
}  // namespace raftkv::tls

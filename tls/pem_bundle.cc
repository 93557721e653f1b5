#include "tls/pem_bundle.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace raftkv::tls {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

// OpenSSL's queued errors as one string (and the queue cleared).
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string m = absl::StrCat(what, " ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(m) : absl::InvalidArgumentError(m);
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": read failed"));
  return s.str();
}

Bio MemBio(absl::string_view pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order.
std::vector<Cert> ParseCertificates(absl::string_view pem) {
  std::vector<Cert> out;
  Bio bio = MemBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the input reads as an error
  return out;
}

std::string SubjectOf(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

absl::Time TimeOf(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

}  // namespace

absl::Status TlsFiles::Validate() const {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(cert_file.empty()
                                          ? "a key file was given without its certificate file"
                                          : "a certificate file was given without its key file");
  }
  return absl::OkStatus();
}

absl::StatusOr<PemBundle> LoadPemBundle(const TlsFiles& files, absl::Time now) {
  if (absl::Status s = files.Validate(); !s.ok()) return s;
  PemBundle b;
  if (files.has_identity()) {
    absl::StatusOr<std::string> chain = ReadFile(files.cert_file, "certificate file");
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key = ReadFile(files.key_file, "key file");
    if (!key.ok()) return key.status();
    std::vector<Cert> certs = ParseCertificates(*chain);
    if (certs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate file ", files.cert_file, " holds no PEM certificate"));
    }
    Bio key_bio = MemBio(*key);
    Key pkey(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (pkey == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("key file ", files.key_file,
                                                     " holds no PEM private key (",
                                                     OpenSslErrors(), ")"));
    }
    X509* leaf = certs[0].get();
    if (X509_check_private_key(leaf, pkey.get()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat("key file ", files.key_file,
                                                     " is not the key of certificate file ",
                                                     files.cert_file));
    }
    b.subject = SubjectOf(leaf);
    b.not_after = TimeOf(X509_get0_notAfter(leaf));
    const absl::Time not_before = TimeOf(X509_get0_notBefore(leaf));
    if (now > b.not_after) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate file ", files.cert_file, " (", b.subject, ") expired at ",
                       absl::FormatTime(b.not_after, absl::UTCTimeZone())));
    }
    if (now < not_before) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate file ", files.cert_file, " (", b.subject,
                       ") is not valid before ", absl::FormatTime(not_before, absl::UTCTimeZone())));
    }
    b.cert_chain = std::move(*chain);
    b.private_key = std::move(*key);
  }
  for (const std::string& f : files.ca_files) {
    absl::StatusOr<std::string> ca = ReadFile(f, "trusted CA file");
    if (!ca.ok()) return ca.status();
    if (ParseCertificates(*ca).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trusted CA file ", f, " holds no PEM certificate"));
    }
    if (!b.ca.empty() && b.ca.back() != '\n') b.ca += '\n';
    b.ca += *ca;
  }
  return b;
}

absl::Status VerifyCertificate(absl::string_view cert_chain_pem, absl::string_view ca_pem,
                               absl::Time now) {
  std::vector<Cert> chain = ParseCertificates(cert_chain_pem);
  if (chain.empty()) return absl::PermissionDeniedError("no certificate was presented");
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (Cert& ca : ParseCertificates(ca_pem)) X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<STACK_OF(X509), StackFree> intermediates(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(intermediates.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), intermediates.get()) != 1) {
    return absl::InternalError(absl::StrCat("X509_STORE_CTX_init: ", OpenSslErrors()));
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(
        absl::StrCat("certificate ", SubjectOf(chain[0].get()),
                     " is not trusted: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

}  // namespace raftkv::tls

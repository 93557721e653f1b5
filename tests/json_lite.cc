#include "tests/json_lite.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace raftkv::testing {

class JsonParser {
 public:
  explicit JsonParser(absl::string_view s) : s_(s) {}

  absl::StatusOr<Json> ParseAll() {
    Json v;
    if (!Value(&v, 0)) return Error();
    SkipSpace();
    if (pos_ != s_.size()) {
      error_ = "trailing characters";
      return Error();
    }
    return v;
  }

 private:
  absl::Status Error() const {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad JSON at offset ", pos_, ": ", error_, " near \"", s_.substr(pos_, 40), "\""));
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' ||
                                s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Fail(const char* why) {
    error_ = why;
    return false;
  }
  bool Literal(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("unknown literal");
    pos_ += word.size();
    return true;
  }

  bool Value(Json* v, int depth) {
    if (depth > 64) return Fail("nested too deeply");
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') {
      v->type_ = Json::Type::kString;
      return String(&v->text_);
    }
    if (c == 't' || c == 'f') {
      v->type_ = Json::Type::kBool;
      v->bool_ = c == 't';
      return Literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return Literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = pos_;
      while (pos_ < s_.size() && (isdigit(static_cast<unsigned char>(s_[pos_])) ||
                                  s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.' ||
                                  s_[pos_] == 'e' || s_[pos_] == 'E')) {
        ++pos_;
      }
      v->type_ = Json::Type::kNumber;
      v->text_ = std::string(s_.substr(start, pos_ - start));
      return true;
    }
    return Fail("unexpected character");
  }

  bool String(std::string* out) {
    ++pos_;  // the opening quote
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (pos_ + 4 > s_.size() ||
              !absl::SimpleHexAtoi(s_.substr(pos_, 4), &cp)) {
            return Fail("bad \\u escape");
          }
          pos_ += 4;
          // UTF-8 of a BMP code point (surrogate pairs are not joined: the
          // outputs read here escape only control characters and <>&).
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: return Fail("bad escape");
      }
    }
    return Fail("unterminated string");
  }

  bool Array(Json* v, int depth) {
    v->type_ = Json::Type::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      v->items_.emplace_back();
      if (!Value(&v->items_.back(), depth + 1)) return false;
      SkipSpace();
      if (pos_ >= s_.size()) return Fail("unterminated array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Fail("expected , or ]");
    }
  }

  bool Object(Json* v, int depth) {
    v->type_ = Json::Type::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
      std::string key;
      if (!String(&key)) return false;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected :");
      ++pos_;
      Json member;
      if (!Value(&member, depth + 1)) return false;
      v->members_[key] = std::move(member);
      SkipSpace();
      if (pos_ >= s_.size()) return Fail("unterminated object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return Fail("expected , or }");
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
  const char* error_ = "";
};

absl::StatusOr<Json> Json::Parse(absl::string_view text) { return JsonParser(text).ParseAll(); }

namespace {
const Json& Null() {
  static const Json* null = new Json();
  return *null;
}
}  // namespace

const Json& Json::operator[](absl::string_view key) const {
  auto it = members_.find(key);
  return it == members_.end() ? Null() : it->second;
}

const Json& Json::operator[](size_t i) const { return i < items_.size() ? items_[i] : Null(); }

bool Json::has(absl::string_view key) const { return members_.find(key) != members_.end(); }

size_t Json::size() const {
  if (type_ == Type::kArray) return items_.size();
  if (type_ == Type::kObject) return members_.size();
  return 0;
}

uint64_t Json::u64(uint64_t fallback) const {
  uint64_t v = 0;
  if ((type_ == Type::kNumber || type_ == Type::kString) && absl::SimpleAtoi(text_, &v)) return v;
  return fallback;
}

int64_t Json::i64(int64_t fallback) const {
  int64_t v = 0;
  if ((type_ == Type::kNumber || type_ == Type::kString) && absl::SimpleAtoi(text_, &v)) return v;
  return fallback;
}

std::string Json::base64() const {
  std::string out;
  if (type_ != Type::kString || !absl::Base64Unescape(text_, &out)) return "";
  return out;
}

std::string Json::Dump() const {
  switch (type_) {
    case Type::kNull: return "null";
    case Type::kBool: return bool_ ? "true" : "false";
    case Type::kNumber: return text_;
    case Type::kString: return absl::StrCat("\"", absl::CEscape(text_), "\"");
    case Type::kArray: {
      std::vector<std::string> parts;
      for (const auto& i : items_) parts.push_back(i.Dump());
      return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
    }
    case Type::kObject: {
      std::vector<std::string> parts;
      for (const auto& [k, m] : members_) {
        parts.push_back(absl::StrCat("\"", absl::CEscape(k), "\":", m.Dump()));
      }
      return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
    }
  }
  return "";
}

}  // namespace raftkv::testing

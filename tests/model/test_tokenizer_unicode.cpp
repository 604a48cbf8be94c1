// The generated code point classes against facts from the Unicode charts, and the strict UTF-8
// decoder against hand-made valid and invalid sequences.
#include <gtest/gtest.h>

#include "model/unicode_tables.hpp"

using micromix::unicode::CharClass;
using micromix::unicode::char_class;
using micromix::unicode::decode_utf8;
using micromix::unicode::kInvalid;

TEST(TokenizerUnicode, ClassesOfKnownCodePoints) {
  const std::pair<uint32_t, CharClass> facts[] = {
      {'A', CharClass::Lu},     {'z', CharClass::Ll},      {0x01C5, CharClass::Lt},  // Dž
      {0x02B0, CharClass::Lm},  {0x4E2D, CharClass::Lo},   {0xAC00, CharClass::Lo},  // 中, 가
      {0x0301, CharClass::M},   {0x0903, CharClass::M},    {0x20DD, CharClass::M},   // Mn, Mc, Me
      {'7', CharClass::N},      {0x0663, CharClass::N},    {0x216B, CharClass::N},   // ٣, Ⅻ (Nl)
      {0x00BD, CharClass::N},   {0x1D7D9, CharClass::N},   {0x1D518, CharClass::Lu},  // ½, 𝟙, 𝔘
      {' ', CharClass::space},  {'\t', CharClass::space},  {'\n', CharClass::space}, {0x0B, CharClass::space},
      {0x85, CharClass::space}, {0xA0, CharClass::space},  {0x3000, CharClass::space}, {0x2029, CharClass::space},
      {0x200B, CharClass::other}, {0x1C, CharClass::other}, {'!', CharClass::other},   {0x1F600, CharClass::other},
      {0xE000, CharClass::other}, {0xD800, CharClass::other}, {0x10FFFF, CharClass::other}, {0x110000, CharClass::other},
      {kInvalid, CharClass::other}, {0xE0100, CharClass::M}, {0x20000, CharClass::Lo}, {0, CharClass::other},
  };
  for (auto [cp, cls] : facts) EXPECT_EQ(static_cast<int>(char_class(cp)), static_cast<int>(cls)) << std::hex << cp;
}

TEST(TokenizerUnicode, DecoderIsStrict) {
  struct Case {
    std::string bytes;
    uint32_t cp, len;
  };
  const Case cases[] = {
      {"a", 'a', 1},
      {"\xC3\xA9", 0xE9, 2},
      {"\xE4\xB8\xAD", 0x4E2D, 3},
      {"\xF0\x9F\x98\x80", 0x1F600, 4},
      {"\xF4\x8F\xBF\xBF", 0x10FFFF, 4},
      {"\x80", kInvalid, 1},              // stray continuation
      {"\xC0\xAF", kInvalid, 1},          // overlong '/'
      {"\xE0\x80\xAF", kInvalid, 1},      // overlong
      {"\xED\xA0\x80", kInvalid, 1},      // surrogate
      {"\xF4\x90\x80\x80", kInvalid, 1},  // > U+10FFFF
      {"\xE4\xB8", kInvalid, 1},          // truncated
      {"\xC3(", kInvalid, 1},             // bad continuation
      {"\xFF", kInvalid, 1},
  };
  for (const auto& c : cases) {
    const auto d = decode_utf8(c.bytes, 0);
    EXPECT_EQ(d.cp, c.cp) << c.bytes;
    EXPECT_EQ(d.len, c.len) << c.bytes;
  }
}

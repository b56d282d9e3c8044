// Escaping for the report page: nothing from a file can open markup, and any byte string becomes
// valid UTF-8.
#include <gtest/gtest.h>

#include <limits>

#include "launcher/report/html_text.h"

namespace lockstep::report {
namespace {

TEST(HtmlEscape, MarkupCharactersBecomeReferences) {
  EXPECT_EQ(html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
}

TEST(HtmlEscape, ValidUtf8IsKeptInvalidBytesAreReplaced) {
  EXPECT_EQ(html_escape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string rep = "\xEF\xBF\xBD";
  EXPECT_EQ(html_escape("a\xFF" "b"), "a" + rep + "b");           // not a lead byte
  EXPECT_EQ(html_escape("\xC0\xAF"), rep + rep);                   // overlong '/'
  EXPECT_EQ(html_escape("\xED\xA0\x80"), rep + rep + rep);         // a UTF-16 surrogate
  EXPECT_EQ(html_escape("x\xE2\x82"), "x" + rep + rep);            // cut at the end
  EXPECT_EQ(html_escape(std::string("a\0b\x1b", 4)), "a" + rep + "b" + rep);  // control bytes
  EXPECT_EQ(html_escape("l1\n\tl2"), "l1\n\tl2");
}

TEST(FormatNumber, SignificantDigits) {
  EXPECT_EQ(format_number(0.861234, 4), "0.8612");
  EXPECT_EQ(format_number(24130.4, 4), "24130");
  EXPECT_EQ(format_number(1.5, 3), "1.50");
  EXPECT_EQ(format_number(0.0, 4), "0.000");
  EXPECT_EQ(format_number(2.5e-6, 3), "2.50e-06");
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN()), "n/a");
}

}  // namespace
}  // namespace lockstep::report

package io.cdp.silver;

/**
 * Silver's text normalisers that Spark SQL has no single-pass built-in for, registered as UDFs by
 * cdp_lib.session (used by cdp_lib.silver.normalize). Each must give exactly what its documented regex
 * definition gives: the tests compare them on hard cases.
 */
public final class Text {
    private Text() {
    }

    /** Java regex {@code \s} (space, tab, LF, VT, FF, CR) or the non-breaking space. */
    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\u000b' || c == '\f' || c == '\r' || c == '\u00a0';
    }

    /**
     * {@code regexp_replace(regexp_replace(s, "[\\s\\u00A0]+", " "), "^ | $", "")}, null when empty:
     * runs of whitespace become one space, then the ends are trimmed. One pass over a value that
     * needs no change (most do not), which is returned as it is. One deliberate difference: Java's
     * {@code $} also matches before a final line terminator (U+0085, U+2028, U+2029), so the regex
     * would also cut a space just before one; here only a space at the very end is cut.
     */
    public static String clean(String s) {
        if (s == null) {
            return null;
        }
        int n = s.length();
        boolean dirty = false;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (isSpace(c) && (c != ' ' || i == 0 || i == n - 1 || s.charAt(i - 1) == ' ')) {
                dirty = true;
                break;
            }
        }
        if (!dirty) {
            return n == 0 ? null : s;
        }
        StringBuilder out = new StringBuilder(n);
        boolean pending = false;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (isSpace(c)) {
                pending = true;
            } else {
                if (pending && out.length() > 0) {
                    out.append(' ');
                }
                pending = false;
                out.append(c);
            }
        }
        return out.length() == 0 ? null : out.toString();
    }
}

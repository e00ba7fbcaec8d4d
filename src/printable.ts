/**
 * Text from a checkpoint file or a user, made safe to print on a terminal (#11.12): a name
 * holding `ESC ] 0 ; … BEL` would otherwise retitle the terminal, `ESC [ 2 J` clear it.
 */

// C0 controls (newlines and tabs too: one field stays one line), DEL, C1 controls (a
// terminal may read U+009B as CSI), bidi embeddings, overrides and isolates (text shown in
// another order than stored), lone surrogates (not text at all).
const UNPRINTABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with every control, bidi or lone-surrogate code unit written as `\xNN` or `\uNNNN`. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

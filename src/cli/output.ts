/** Output of the `resume` command, safe for a terminal (#11.12). */
import { printable } from '../printable.js';

// DEL, C1 controls, bidi controls: JSON.stringify leaves them raw (it escapes C0 and lone
// surrogates itself). `\u` escapes keep the JSON equal to what it was.
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `value` as indented JSON in which no string can drive a terminal. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Each line of `text` with what a terminal would act on escaped; the line breaks kept. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

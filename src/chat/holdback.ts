/** How much of a streamed text must wait for the next piece before it can be emitted. */

/**
 * Length of the longest suffix of `text` that is a proper prefix of `marker`. Text pieces end at
 * arbitrary places, so that much must be held back: the next piece may complete the marker.
 */
export function partialMarkerLength(text: string, marker: string): number {
  for (let length = Math.min(text.length, marker.length - 1); length > 0; length--) {
    if (text.startsWith(marker.slice(0, length), text.length - length)) return length;
  }
  return 0;
}

/** Length of the run of characters accepted by `isRunChar` that ends just before `text[end]`. */
export function trailingRunLength(text: string, end: number, isRunChar: (char: string) => boolean): number {
  let start = end;
  while (start > 0 && isRunChar(text.charAt(start - 1))) start--;
  return end - start;
}

/** Escaping config values into the places they are interpolated: RE2 regexes and PromQL string literals. */

/** Escapes a literal for an RE2 regex (Prometheus relabel `regex` and PromQL `=~`), matching it exactly. */
export function regexEscape(s: string): string {
    return s.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

/** A regex alternative matching exactly one of the literals. */
export function regexOneOf(values: readonly string[]): string {
    if (values.length === 0) throw new Error("regexOneOf needs at least one value");
    return values.map(regexEscape).join("|");
}

/** A PromQL double-quoted string literal holding `s`. */
export function promqlString(s: string): string {
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

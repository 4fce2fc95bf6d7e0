// Number formatting for chart labels and the status line.

/** A value for a label: 3 significant figures, exponent form when very large or small. */
export function formatValue(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  if (magnitude === 0) return "0";
  const text = magnitude >= 1e4 || magnitude < 1e-3
    ? value.toExponential(1).replace(".0e", "e").replace("e+", "e")
    : String(Number(value.toPrecision(3)));
  return text.replaceAll("-", "−");
}

/** An integer with thousands separators. */
export function formatCount(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return Math.round(value).toLocaleString("en-US");
}

/** Plain aligned columns for list commands: readable in a terminal, easy to cut/awk. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  return all
    .map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join("  ").trimEnd())
    .join("\n");
}

export const dash = (value: unknown): string => (value === null || value === undefined || value === "" ? "-" : String(value));

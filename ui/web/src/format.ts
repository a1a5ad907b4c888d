/** Small display helpers. */

export function humanSize(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function shortDigest(d: string | undefined): string {
  if (d === undefined) return '';
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : `${d.slice(0, i)}:${d.slice(i + 1, i + 13)}`;
}

/** The last part of a media type, which says the most: `image.manifest.v1+json`. */
export function shortMediaType(mt: string | undefined): string {
  if (mt === undefined) return '';
  return mt.replace(/^application\/vnd\.(oci|docker)\./, '').replace(/^application\//, '');
}

export function modeString(type: string, mode: number): string {
  const t = ({ file: '-', directory: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p' } as Record<string, string>)[type] ?? '?';
  const bit = (b: number, c: string): string => (mode & b ? c : '-');
  const special = (x: number, s: number, c: string): string => {
    const has = (mode & x) !== 0;
    if (mode & s) return has ? c : c.toUpperCase();
    return has ? 'x' : '-';
  };
  return t + bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's') + bit(0o40, 'r') + bit(0o20, 'w') + special(0o10, 0o2000, 's')
    + bit(0o4, 'r') + bit(0o2, 'w') + special(0o1, 0o1000, 't');
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Every way a duration is shown, in one place (#16.7): three styles, each pinned by the
 * messages and tables that use them.
 */

/** `45s`, `12m`, `3h 5m`, `2d 4h`: an age in the `resume` command's tables. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** `3.2s`, `5m`, `2h 5m`, `3d`: how long ago the ISO time `iso` was, in notices. */
export function formatAgeOf(iso: string): string {
  const ms = Math.max(0, Date.now() - Date.parse(iso));
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 86_400_000)
    return `${Math.floor(ms / 3_600_000)}h ${Math.round((ms % 3_600_000) / 60_000)}m`;
  return `${Math.round(ms / 86_400_000)}d`;
}

/** `7s`, `2m05s`, `3h07m`: fixed-width elapsed times and ETAs on a progress line. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

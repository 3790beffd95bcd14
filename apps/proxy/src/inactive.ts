import { isWritten, type ConfigDocument } from '@proxy/config';

/** A configured section whose feature this build does not run yet. */
export interface InactiveSection {
  readonly section: string;
  readonly detail: string;
}

/**
 * Lists the config sections that were validated but are not active in this build, so the app
 * can say so once at startup instead of ignoring them silently or pretending.
 */
export function inactiveSections(document: ConfigDocument): InactiveSection[] {
  const written = (...path: string[]): boolean => isWritten(document, path);
  const out: InactiveSection[] = [];
  if (written('management')) out.push({ section: 'management', detail: 'the management API is not active yet' });
  return out;
}

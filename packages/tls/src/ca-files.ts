/** Writing a generated CA to disk: the certificate world-readable, the key private to its owner. */
import { lstat, mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { CertificateAuthorityFiles } from './authority.js';
import type { GeneratedCa } from './generate.js';

/** File names of a CA written into a directory. */
export const CA_CERT_FILE_NAME = 'ca.crt';
export const CA_KEY_FILE_NAME = 'ca.key';

/**
 * Writes `ca.crt` (mode 0644) and `ca.key` (mode 0600) into `dir`, creating it if needed.
 * Refuses with `CA_EXISTS` naming the file when either already exists (nothing is written
 * then); any other failure is `CA_WRITE`, and leaves neither file behind. Returns both paths.
 */
export async function writeCertificateAuthority(dir: string, ca: GeneratedCa): Promise<CertificateAuthorityFiles> {
  const certFile = join(dir, CA_CERT_FILE_NAME);
  const keyFile = join(dir, CA_KEY_FILE_NAME);
  for (const file of [certFile, keyFile]) await refuseExisting(file);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw writeError(dir, error);
  }
  // The key first: if the certificate cannot be written, the key is removed again.
  await writeNewFile(keyFile, ca.keyPem, 0o600);
  try {
    await writeNewFile(certFile, ca.certPem, 0o644);
  } catch (error) {
    await rm(keyFile, { force: true });
    throw error;
  }
  return { certFile, keyFile };
}

async function refuseExisting(file: string): Promise<void> {
  const exists = await lstat(file).then(
    () => true,
    (error: unknown) => {
      if ((error as { code?: unknown }).code === 'ENOENT') return false;
      throw writeError(file, error);
    },
  );
  if (exists) throw new ProxyError(ErrorCodes.CA_EXISTS, `${file} already exists; refusing to overwrite it (move it away or choose another directory)`);
}

/**
 * Creates `file` exclusively (never following or replacing an existing one) with `mode` from
 * the start, then sets the mode exactly, whatever the umask. A failed write removes the file.
 */
async function writeNewFile(file: string, content: string, mode: number): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'wx', mode);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'EEXIST') {
      throw new ProxyError(ErrorCodes.CA_EXISTS, `${file} already exists; refusing to overwrite it`, { cause: error });
    }
    throw writeError(file, error);
  }
  try {
    await handle.writeFile(content);
    await handle.chmod(mode);
  } catch (error) {
    await handle.close();
    await rm(file, { force: true });
    throw writeError(file, error);
  }
  await handle.close();
}

function writeError(path: string, error: unknown): ProxyError {
  const code = (error as { code?: unknown }).code;
  return new ProxyError(ErrorCodes.CA_WRITE, `cannot write ${path} (${typeof code === 'string' ? code : String(error)})`, { cause: error });
}

/**
 * Placeholder Lambda assets for tests and offline synth: a real (tiny) zip file holding an
 * empty `bootstrap` per function, laid out like `cargo lambda build --output-format zip`.
 *
 * Run directly to fill a directory: `npx tsx test/placeholder-assets.ts DIR`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FUNCTION_NAMES } from '../lib/constants';
import { assetPath } from '../lib/rust-function';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive with one stored (uncompressed) file; executable bit set like cargo lambda's. */
export function zipOneFile(name: string, content: Buffer): Buffer {
  const fileName = Buffer.from(name, 'utf8');
  const crc = crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0); // local file header
  local.writeUInt16LE(20, 4); // version needed
  local.writeUInt16LE(0, 6); // flags
  local.writeUInt16LE(0, 8); // method: stored
  local.writeUInt16LE(0, 10); // time
  local.writeUInt16LE(0x21, 12); // date: 1980-01-01
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(content.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  local.writeUInt16LE(0, 28);

  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0); // central directory header
  central.writeUInt16LE(0x0314, 4); // made by: Unix, 2.0
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(0, 8);
  central.writeUInt16LE(0, 10);
  central.writeUInt16LE(0, 12);
  central.writeUInt16LE(0x21, 14);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(content.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  central.writeUInt16LE(0, 30); // extra
  central.writeUInt16LE(0, 32); // comment
  central.writeUInt16LE(0, 34); // disk
  central.writeUInt16LE(0, 36); // internal attrs
  central.writeUInt32LE(((0o100755 << 16) >>> 0), 38); // external attrs: -rwxr-xr-x
  central.writeUInt32LE(0, 42); // offset of local header

  const centralOffset = local.length + fileName.length + content.length;
  const centralSize = central.length + fileName.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); // end of central directory
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralOffset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([local, fileName, content, central, fileName, end]);
}

/** Writes `<name>/bootstrap.zip` for every function under `dir` (created if needed). */
export function writePlaceholderAssets(dir: string): string {
  for (const name of FUNCTION_NAMES) {
    const zip = assetPath(dir, name);
    fs.mkdirSync(path.dirname(zip), { recursive: true });
    fs.writeFileSync(zip, zipOneFile('bootstrap', Buffer.from(`#!/bin/sh\necho placeholder ${name}\n`)));
  }
  return dir;
}

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary assets directory, removed when the process exits. */
export function tempAssetsDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infra-assets-'));
  created.push(dir);
  return writePlaceholderAssets(dir);
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: tsx test/placeholder-assets.ts DIR');
    process.exit(2);
  }
  writePlaceholderAssets(path.resolve(dir));
  console.log(`placeholder Lambda assets written under ${dir}`);
}

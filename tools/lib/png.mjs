// 8-bit PNG files from raw samples, unfiltered: the app's icons (tools/app/build_web.mjs) and the synthetic
// images of the tests.

import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR_TYPE_OF_CHANNELS = { 1: 0, 4: 6 }; // grey, RGBA

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, checksum]);
}

/**
 * A PNG of width × height from `samples` (row-major, `channels` per pixel: 1 grey or 4 RGBA), compressed at
 * zlib's `level` (its default when not given).
 */
export function encodePng(width, height, samples, { channels = 1, level } = {}) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOUR_TYPE_OF_CHANNELS[channels];
  const stride = width * channels;
  const scanlines = Buffer.alloc((stride + 1) * height); // filter byte 0 (none) per row
  for (let y = 0; y < height; y += 1) scanlines.set(samples.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(scanlines, level === undefined ? {} : { level })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An 8-bit grey PNG of width × height whose pixel (x, y) is value(x, y) (0–255). */
export function greyPng(width, height, value) {
  const samples = new Uint8Array(width * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) samples[y * width + x] = value(x, y);
  }
  return encodePng(width, height, samples);
}

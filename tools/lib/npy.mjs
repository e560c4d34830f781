// Minimal .npy (format 1.0) reading and writing of C-ordered little-endian float32 arrays, the exchange
// format between the Python tools and the Node runtimes (TensorFlow.js, ONNX Runtime).
import fs from 'node:fs';

export function readNpyFloat32(file) {
  const bytes = fs.readFileSync(file);
  if (bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file} is not a .npy file`);
  const major = bytes[6];
  const headerStart = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const header = bytes.toString('latin1', headerStart, headerStart + headerLength);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file} must hold a C-ordered little-endian float32 array (header: ${header.trim()})`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const start = bytes.byteOffset + headerStart + headerLength;
  return { shape, data: new Float32Array(bytes.buffer.slice(start, bytes.byteOffset + bytes.length)) };
}

export function writeNpyFloat32(file, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // numpy aligns the data to 64 bytes
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;  // format version 1.0
  prefix.writeUInt16LE(header.length, 8);
  const array = Float32Array.from(data);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(array.buffer)]));
}

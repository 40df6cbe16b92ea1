// The older agents' binary formats: transporttrie ("trie") and the dictionary-less tree ("tree").
// Both are pre-order node lists of `uvarint len, len bytes, uvarint value, uvarint childCount`.

import { unprocessable } from "../errors.ts";
import type { IngestLimits } from "./ingest-params.ts";

/** A cursor over the body whose errors name the format, the byte offset and what was expected. */
class NodeReader {
  off = 0;
  constructor(
    readonly b: Uint8Array,
    readonly format: string,
  ) {}

  get remaining(): number {
    return this.b.length - this.off;
  }

  fail(at: number, msg: string) {
    return unprocessable(`${this.format}: malformed body at byte ${at}: ${msg}`);
  }

  /** Go's binary.ReadUvarint: at most 10 bytes, the 10th at most 1. Exact up to 2^53. */
  uvarint(what: string): number {
    const start = this.off;
    let x = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (this.off >= this.b.length) throw this.fail(start, `the body ends (${this.b.length} bytes) inside ${what} (a uvarint)`);
      const byte = this.b[this.off++];
      if (i === 9 && byte > 1) throw this.fail(start, `${what} overflows 64 bits`);
      x += (byte & 0x7f) * mul;
      if (byte < 0x80) return x;
      mul *= 128;
    }
  }

  bytes(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw this.fail(this.off, `${what} is ${n} bytes long but only ${this.remaining} bytes remain`);
    const out = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** Every node takes at least 3 bytes, so a larger child count cannot be honest. */
  checkChildren(at: number, n: number) {
    if (n > this.remaining / 3) throw this.fail(at, `the node declares ${n} children but only ${this.remaining} bytes remain (a node takes at least 3)`);
  }

  checkEnd() {
    if (this.remaining > 0) throw this.fail(this.off, `${this.remaining} bytes follow the end of the ${this.format} (its root's subtree is complete)`);
  }
}

/**
 * Adds a `;`-joined stack the way Pyroscope's tree.Insert reads a key: an empty last segment
 * (a trailing `;`) names no frame, and an empty key has no frames at all, so it is dropped.
 */
function addStack(out: Map<string, number>, key: string, v: number) {
  if (key.endsWith(";")) key = key.slice(0, -1);
  if (key === "" || v === 0) return;
  out.set(key, (out.get(key) ?? 0) + v);
}

const utf8 = new TextDecoder();

/**
 * transporttrie: prefix-compressed keys; every node with a value emits (key, value), the key
 * being the fragments on the path from the root. An empty body is an empty trie.
 */
export function parseTrie(bytes: Uint8Array, limits: IngestLimits): Map<string, number> {
  void limits; // Pyroscope applies no symbol or child limits to tries: fragments are not symbols
  const out = new Map<string, number>();
  if (bytes.length === 0) return out;
  const r = new NodeReader(bytes, "trie");
  // Fragments may split a UTF-8 character, so the key is kept as bytes and decoded when emitted.
  let key = new Uint8Array(256);
  let keyLen = 0;
  // Per open node: children still to read, and the key length before its fragment.
  const open: { left: number; base: number }[] = [];

  const readNode = () => {
    const frag = r.bytes(r.uvarint("a name fragment length"), "the name fragment");
    const value = r.uvarint("a node value");
    const childrenAt = r.off;
    const children = r.uvarint("a child count");
    r.checkChildren(childrenAt, children);
    const base = keyLen;
    if (keyLen + frag.length > key.length) {
      const grown = new Uint8Array(Math.max(key.length * 2, keyLen + frag.length));
      grown.set(key.subarray(0, keyLen));
      key = grown;
    }
    key.set(frag, keyLen);
    keyLen += frag.length;
    if (value > 0) addStack(out, utf8.decode(key.subarray(0, keyLen)), value);
    if (children > 0) open.push({ left: children, base });
    else keyLen = base;
  };

  readNode();
  while (open.length > 0) {
    const top = open[open.length - 1];
    if (top.left === 0) {
      keyLen = top.base;
      open.pop();
      continue;
    }
    top.left--;
    readNode();
  }
  r.checkEnd();
  return out;
}

/**
 * tree (no dictionary): pre-order nodes of name, self value and child count under an unnamed
 * root; each node's stack is the names on its path below the root. Names longer than
 * maxProfileSymbolValueLength and child counts above maxProfileStacktraceSamples are refused,
 * as Pyroscope does (0 = no limit).
 */
export function parseTree(bytes: Uint8Array, limits: IngestLimits): Map<string, number> {
  const out = new Map<string, number>();
  const r = new NodeReader(bytes, "tree");
  const maxName = limits.maxProfileSymbolValueLength ?? 0;
  const maxChildren = limits.maxProfileStacktraceSamples ?? 0;
  // The `;`-joined stack of each open node below the root (ropes make the joins cheap).
  const path: string[] = [];
  const open: number[] = []; // children still to read, per open node

  const readNode = (root: boolean) => {
    const at = r.off;
    const nameLen = r.uvarint("a name length");
    if (maxName > 0 && nameLen > maxName)
      throw r.fail(at, `name length ${nameLen} exceeds the limit of ${maxName} bytes (max_profile_symbol_value_length)`);
    const name = utf8.decode(r.bytes(nameLen, "the name"));
    if (root && name !== "") throw r.fail(at, `the root node is named ${JSON.stringify(name.slice(0, 80))}; a tree's root must be unnamed`);
    const self = r.uvarint("a self value");
    const childrenAt = r.off;
    const children = r.uvarint("a child count");
    if (maxChildren > 0 && children > maxChildren)
      throw r.fail(childrenAt, `child count ${children} exceeds the limit of ${maxChildren} (max_profile_stacktrace_samples)`);
    r.checkChildren(childrenAt, children);
    if (!root) {
      const key = path.length ? path[path.length - 1] + ";" + name : name;
      path.push(key);
      addStack(out, key, self);
    }
    if (children > 0) open.push(children);
    else if (!root) path.pop();
  };

  readNode(true);
  while (open.length > 0) {
    const top = open.length - 1;
    if (open[top] === 0) {
      open.pop();
      path.pop(); // no-op once only the root is left: it has no path entry
      continue;
    }
    open[top]--;
    readNode(false);
  }
  r.checkEnd();
  return out;
}

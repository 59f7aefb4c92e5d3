import type { Socket } from 'node:net';

/**
 * Resets a TCP connection (RST) and destroys the socket — unless its writable side has ended:
 * `resetAndDestroy()` while `end()`'s shutdown request is still pending leaves the native handle
 * counted and the process spins at 100 % CPU when it exits, never ending (seen on Node 20.20 and
 * 22.23; the same was found by libp2p, js-libp2p#3597). Such a socket is destroyed instead (it has
 * sent, or is sending, a FIN). Returns whether an RST was sent.
 */
export function resetSocket(s: Socket): boolean {
  if (s.destroyed) return false;
  if (s.writableEnded) {
    s.destroy();
    return false;
  }
  s.resetAndDestroy();
  return true;
}

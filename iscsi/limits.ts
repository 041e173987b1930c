// What one connection, and the whole portal, may make the target hold in memory or wait for:
// the limits are configuration, never what a peer announces (docs/security.md "iSCSI limits").
// Past a limit the target applies back-pressure first (no R2T, no execution, the socket not
// read), then refuses (Reject, Login status, CHECK CONDITION), then closes the connection.

export interface IscsiLimits {
  /** Text of a Login or Text request spread over continuation PDUs (C bit, RFC 7143 11.10.2 /
   *  11.12.2), per connection. Past it: Login status 0302 (out of resources) or Reject 0x0a. */
  maxTextBytes: number;
  /** Data-Out buffers of WRITE commands on one connection, reserved when the data is due (before
   *  R2Ts), never from an announced length alone. Also the largest Expected Data Transfer
   *  Length of one write (a larger one is rejected). */
  connectionWriteBufferBytes: number;
  /** The same, for all connections together. */
  totalWriteBufferBytes: number;
  /** Data-In of READ-type commands executing or being sent on one connection; past it, further
   *  commands wait before they run, and the socket is not read while its output backs up. */
  connectionResponseBytes: number;
  /** The same, for all connections together. */
  totalResponseBytes: number;
  /** RFC 7143 4.2.2.1 CmdSN window: non-immediate commands a session may have queued. */
  commandWindow: number;
  /** Tasks (commands, immediate ones included) a connection may have in progress; past it an
   *  immediate command is rejected (Reject 0x06, RFC 7143 11.17.1). */
  maxTasks: number;
  /** A PDU begun and not complete within this, output the peer does not read for this long, or
   *  an R2T not answered with Data-Out for this long: the connection is closed. */
  stallTimeoutMs: number;
  /** A connection that has not finished logging in by then is closed. */
  loginTimeoutMs: number;
}

export const DEFAULT_ISCSI_LIMITS: IscsiLimits = {
  maxTextBytes: 64 * 1024,
  connectionWriteBufferBytes: 32 * 1024 * 1024,
  totalWriteBufferBytes: 128 * 1024 * 1024,
  connectionResponseBytes: 16 * 1024 * 1024,
  totalResponseBytes: 128 * 1024 * 1024,
  commandWindow: 128,
  maxTasks: 160,
  stallTimeoutMs: 30_000,
  loginTimeoutMs: 30_000,
};

/**
 * Bytes reserved against a connection's limit and the portal's total. A reservation either fits
 * both or is not made; callers that must wait register with `whenReleased` and try again.
 */
export class ByteBudget {
  private usedBytes = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly limitBytes: number,
    private readonly parent?: ByteBudget,
  ) {}

  get used(): number {
    return this.usedBytes;
  }

  /** Reserves `n` bytes when they fit here and in the parent. */
  tryReserve(n: number): boolean {
    if (n <= 0) return true;
    if (this.usedBytes + n > this.limitBytes) return false;
    if (this.parent !== undefined && !this.parent.tryReserve(n)) return false;
    this.usedBytes += n;
    return true;
  }

  release(n: number): void {
    if (n <= 0) return;
    this.usedBytes -= n;
    this.parent?.release(n);
    this.wake();
  }

  /** Calls `retry` after the next release here or in the parent; `retry` must `forget` itself
   *  first (it is registered at both levels). */
  whenReleased(retry: () => void): void {
    this.waiters.add(retry);
    this.parent?.waiters.add(retry);
  }

  forget(retry: () => void): void {
    this.waiters.delete(retry);
    this.parent?.waiters.delete(retry);
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) w();
  }
}

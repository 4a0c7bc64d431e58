// The registry's clock as seen from the page. Leases end at `expires_at`, in the server's
// milliseconds since the epoch; the browser's clock may be off by seconds or minutes, so
// countdowns use an estimate of the server's time instead of `Date.now()` alone.
//
// Each response stamps the server's time somewhere between our send and receive times: the
// Worker's `x-vasco-now` header to the millisecond (the `now` its lease decisions used), or else
// the `Date` header to the whole second. Each exchange therefore bounds the offset
// (local - server) to an interval; intersecting the intervals of successive polls narrows it
// to about the round-trip time. If a new interval does not overlap (a clock was stepped), the
// estimate starts over from that exchange.

export class ServerClock {
  constructor() {
    this.low = -Infinity;
    this.high = Infinity;
    this.samples = 0;
  }

  /**
   * Records one exchange.
   * @param {number} sentAt local ms when the request left
   * @param {number} receivedAt local ms when the answer arrived
   * @param {string | null} dateHeader the response's `Date` header
   * @param {string | null} [nowHeader] the response's `x-vasco-now` header (ms), preferred
   * @returns {boolean} whether a header was usable
   */
  observe(sentAt, receivedAt, dateHeader, nowHeader = null) {
    const exact = nowHeader ? Number(nowHeader) : NaN;
    const [stamped, resolution] = Number.isFinite(exact)
      ? [exact, 1]
      : [dateHeader ? Date.parse(dateHeader) : NaN, 1000];
    if (!Number.isFinite(stamped) || !(receivedAt >= sentAt)) return false;
    // The server's time t at stamping is in [stamped, stamped + resolution), and our clock
    // read t + offset somewhere in [sentAt, receivedAt].
    const low = sentAt - stamped - resolution;
    const high = receivedAt - stamped;
    if (this.samples === 0 || Math.max(this.low, low) > Math.min(this.high, high)) {
      this.low = low;
      this.high = high;
      this.samples = 1;
    } else {
      this.low = Math.max(this.low, low);
      this.high = Math.min(this.high, high);
      this.samples += 1;
    }
    return true;
  }

  /** Local minus server time in ms (0 until an exchange had a usable header). */
  offset() {
    return this.samples === 0 ? 0 : (this.low + this.high) / 2;
  }

  /** The server's current time, estimated. */
  now(local = Date.now()) {
    return local - this.offset();
  }
}

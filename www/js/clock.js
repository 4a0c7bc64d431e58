// The registry's clock as seen from the page. Leases end at `expires_at`, in the server's
// milliseconds since the epoch; the browser's clock may be off by seconds or minutes, so
// countdowns use an estimate of the server's time instead of `Date.now()` alone.
//
// Each response's `Date` header stamps the server's time at whole-second resolution somewhere
// between our send and receive times. Each exchange therefore bounds the offset
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
   * @returns {boolean} whether the header was usable
   */
  observe(sentAt, receivedAt, dateHeader) {
    const stamped = dateHeader ? Date.parse(dateHeader) : NaN;
    if (!Number.isFinite(stamped) || !(receivedAt >= sentAt)) return false;
    // The server's time t at stamping is in [stamped, stamped + 1000), and our clock read
    // t + offset somewhere in [sentAt, receivedAt].
    const low = sentAt - stamped - 1000;
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

  /** Local minus server time in ms (0 until an exchange had a `Date` header). */
  offset() {
    return this.samples === 0 ? 0 : (this.low + this.high) / 2;
  }

  /** The server's current time, estimated. */
  now(local = Date.now()) {
    return local - this.offset();
  }
}

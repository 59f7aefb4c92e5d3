/** Online statistics (Welford): num, min, max, avg and population variance, for benchmarks. */
export class Statistics {
  num = 0;
  min = Infinity;
  max = -Infinity;
  private mean = 0;
  private m2 = 0;

  update(x: number): void {
    this.num++;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
    const d = x - this.mean;
    this.mean += d / this.num;
    this.m2 += d * (x - this.mean);
  }

  get avg(): number {
    return this.num === 0 ? 0 : this.mean;
  }

  /** Population variance. */
  get var(): number {
    return this.num === 0 ? 0 : this.m2 / this.num;
  }

  toJSON(): { num: number; max: number; min: number; avg: number; var: number } {
    return { num: this.num, max: this.num ? this.max : 0, min: this.num ? this.min : 0, avg: this.avg, var: this.var };
  }
}

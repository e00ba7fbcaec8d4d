/**
 * Objects tracked with `chp.track()` (a generator, a simulation engine): their states are
 * saved with the checkpoint's and put back into them, at once if `restore()` already ran,
 * else when it does.
 */
import type { Random } from './random.js';

/** What `chp.track()` accepts: any object whose state can be read and set. */
export interface Trackable<S = unknown> {
  getState(): S;
  setState(state: S): void;
}

export class TrackedObjects {
  readonly #objects = new Map<string, Trackable>();
  /** Saved states not put back yet (their object is not tracked yet): saved again as they are. */
  #pending: Record<string, unknown> = {};

  constructor(readonly random: Random) {}

  add(name: string, obj: Trackable): void {
    this.#objects.set(name, obj);
    this.#apply(name, obj);
  }

  /** `restore()`: the saved states, put back into the objects tracked so far. */
  restore(saved: Record<string, unknown>): void {
    this.#pending = saved;
    for (const [name, obj] of this.#objects) this.#apply(name, obj);
  }

  /** Every state, as a save stores it. */
  states(): Record<string, unknown> {
    const states: Record<string, unknown> = { ...this.#pending };
    for (const [name, obj] of this.#objects) states[name] = obj.getState();
    return states;
  }

  #apply(name: string, obj: Trackable): void {
    if (!Object.hasOwn(this.#pending, name)) return;
    // #14.1: a setState that draws numbers (synaptic's fromJSON builds neurons with random
    // biases) must not shift the restored stream, whether it runs in restore() or in a
    // track() after it: the generator is put back as it was, as if restored last.
    const random = this.random.getState();
    try {
      obj.setState(this.#pending[name]);
    } finally {
      this.random.setState(random);
    }
    delete this.#pending[name];
  }
}

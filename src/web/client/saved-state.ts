// The train page's state in the browser's IndexedDB: both networks' weights, both optimizers and the
// position, saved every few steps and at the end, so a reload or a crashed tab resumes where it was.

import type { MetricsRow } from '../../run/records.js';
import type { AdamSnapshot } from '../../train/adam.js';
import type { PageEvalRow } from '../train-types.js';

export interface SavedTraining {
  /** The settings that define the run (savedKey): another setup never resumes this state. */
  key: string;
  /** Steps done; the data order and dropout masks of the next one follow from it and the seed. */
  step: number;
  g: Float32Array[];
  d: Float32Array[];
  optG: AdamSnapshot;
  optD: AdamSnapshot;
  /** The evaluations so far, shown again after a resume. */
  evals?: PageEvalRow[];
  /** metrics.jsonl's rows so far, for the downloaded run folder. */
  rows?: MetricsRow[];
  /** When the run began, and the seconds it has trained (over its resumes). */
  started?: string;
  trainSeconds?: number;
  time: string;
}

const DB = 'pix2pix-train';
const STORE = 'runs';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      // Resolved once the transaction is durable, not when the request alone succeeds.
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error);
      tx.onabort = () => reject(tx.error ?? new Error('the save was aborted'));
    });
  } finally {
    db.close();
  }
}

export function loadSaved(key: string): Promise<SavedTraining | undefined> {
  return withStore('readonly', (s) => s.get(key) as IDBRequest<SavedTraining | undefined>);
}

/** Replaces the saved state of its run in one transaction: the previous one stays whole until then. */
export async function save(rec: SavedTraining): Promise<void> {
  try {
    await withStore('readwrite', (s) => s.put(rec));
  } catch (e) {
    const quota = (e as DOMException)?.name === 'QuotaExceededError';
    throw new Error(
      quota
        ? `the browser's storage quota is full: step ${rec.step} was not saved; the state saved before it is intact`
        : `saving step ${rec.step} failed (${(e as Error).message}); the state saved before it is intact`,
    );
  }
}

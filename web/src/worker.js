// The worker side of `worker: true`: one Classifier per worker, driven by
// messages from worker-client.js. It runs as a dedicated module Worker in
// browsers and as a worker_threads Worker in Node.
//
// Requests are { call, method, args }. Replies are { call, ok: true, value,
// stats } or { call, ok: false, error: { code, message, ...fields } }, and
// events are { event, detail }.

import { Classifier } from './classifier.js';
import { DualmemError } from './errors.js';

// In a variable, so that bundlers do not try to pack a Node module for browsers.
const NODE_WORKER_THREADS = 'node:worker_threads';

const inBrowserWorker = typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope;

async function connect() {
  if (inBrowserWorker) {
    return {
      post: (message, transfer = []) => globalThis.postMessage(message, transfer),
      listen: (handler) => globalThis.addEventListener('message', (event) => handler(event.data)),
    };
  }
  const { parentPort } = await import(/* @vite-ignore */ NODE_WORKER_THREADS);
  return {
    post: (message, transfer = []) => parentPort.postMessage(message, transfer),
    listen: (handler) => parentPort.on('message', handler),
  };
}

/** Copies an error into a plain object that survives postMessage. */
export function serializeError(error) {
  if (error instanceof DualmemError) {
    const fields = {};
    for (const [key, value] of Object.entries(error)) {
      if (key !== 'cause' && (value === null || ['string', 'number', 'boolean'].includes(typeof value))) {
        fields[key] = value;
      }
    }
    return { ...fields, code: error.code, message: error.message };
  }
  return { code: 'internal', message: `${error?.name ?? 'Error'}: ${error?.message ?? error}` };
}

/** Rebuilds inputs that worker-client.js had to take apart for transfer. */
function restoreInput(input) {
  if (input?.dualmemImageData) {
    const { buffer, width, height } = input.dualmemImageData;
    return new ImageData(new Uint8ClampedArray(buffer), width, height);
  }
  return input;
}

function plainDetail(detail) {
  if (!detail?.error) return detail;
  return { ...detail, error: { name: detail.error.name, message: String(detail.error.message ?? detail.error) } };
}

const port = await connect();
let classifier = null;

const methods = {
  async create(options, internals) {
    classifier = await Classifier.create({
      ...options,
      onProgress: undefined,
      onWarning: (message) => port.post({ event: 'warning', detail: { message } }),
    }, {
      ortModuleUrl: internals.ortModuleUrl,
      onEvent: (type, detail) => port.post({ event: type, detail: plainDetail(detail) }),
    });
    return classifier.classes;
  },
  classify: (input) => classifier.classify(restoreInput(input)),
  addExamples: (className, inputs) => classifier.addExamples(className, inputs.map(restoreInput)),
  correct: (id, label) => classifier.correct(id, label),
  train: (options) => classifier.train(options),
  addClass: (spec) => classifier.addClass(spec),
  removeClass: (name) => classifier.removeClass(name),
  memoryExport: (options) => classifier.memory.export(options),
  memoryImport: (file, options) => classifier.memory.import(file, options),
  memoryClear: () => classifier.memory.clear(),
  dispose: () => classifier?.dispose(),
};

port.listen(async ({ call, method, args }) => {
  try {
    if (!Object.hasOwn(methods, method)) throw new DualmemError('internal', `unknown worker method ${method}`);
    if (method !== 'create' && classifier === null) {
      throw new DualmemError('internal', 'the worker got a call before create');
    }
    const value = await methods[method](...args);
    port.post({ call, ok: true, value, stats: classifier?.stats() ?? null });
  } catch (error) {
    port.post({ call, ok: false, error: serializeError(error), stats: classifier?.stats() ?? null });
  }
});
port.post({ event: 'ready', detail: null });

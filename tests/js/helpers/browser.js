// Launches the system Chromium headless through playwright-core for the
// browser tests, with a fresh temporary profile that is deleted on close.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's chromium package installs the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  // Headless Chromium 156 still offers WebGL 2 on its software renderer with
  // the GPU off, which the decoder's exact-alpha readback needs.
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Returns why the browser tests cannot run here, or null when they can. */
export function browserSkipReason() {
  if (!existsSync(CHROMIUM_PATH)) {
    return `${CHROMIUM_PATH} is missing; install Debian's chromium package to run the browser tests`;
  }
  return null;
}

/**
 * Starts headless Chromium with an empty profile, or with `options.profile`,
 * a user data folder that the caller owns and that is kept on close.
 *
 * @param {{profile?: string}} [options]
 * @returns {Promise<{context: import('playwright-core').BrowserContext, close: () => Promise<void>}>}
 */
export async function launchBrowser(options = {}) {
  const { chromium } = await import('playwright-core');
  const owned = options.profile === undefined;
  const profile = owned ? await mkdtemp(join(tmpdir(), 'dualmem-chromium-')) : options.profile;
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  } catch (error) {
    if (owned) await rm(profile, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    close: async () => {
      await context.close();
      if (owned) await rm(profile, { recursive: true, force: true });
    },
  };
}

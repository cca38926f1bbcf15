/** The instrumentation scope of everything the agent emits. */
import type { InstrumentationScope } from '@opentelemetry/core';

export const SCOPE: InstrumentationScope = { name: 'kong-watcher', version: '0.1.0' };

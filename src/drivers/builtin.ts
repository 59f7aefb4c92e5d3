/**
 * Registers the built-in drivers. Each factory imports its driver module lazily, so a process
 * that only uses `files` never loads the Kafka client or ZeroMQ.
 */
import { registerDriver } from '../api/registry.js';

registerDriver('files', async (o) => (await import('./files/driver.js')).createFilesDriver(o));
registerDriver('memory', async (o) => (await import('./memory/driver.js')).createMemoryDriver(o));
registerDriver('simple', async (o) => (await import('./memory/driver.js')).createMemoryDriver(o));
registerDriver('kafka', async (o) => (await import('./kafka/driver.js')).createKafkaDriver(o));
registerDriver('octopus', async (o) => (await import('./kafka/driver.js')).createKafkaDriver(o));

export { KongDiscovery, DEFAULT_DISCOVERY_OPTIONS } from './kong-discovery';
export { matchKongMaster, parseMasterTitle, isWorkerTitle } from './classify';
export type { KongProcess, KongDiscoveryOptions, DiscoveryScope, KongDiscoveryEvents } from './types';

#ifndef RECON_CPREFETCH_SHIM_H
#define RECON_CPREFETCH_SHIM_H
// A hint to fetch the cache line at `address` for reading: a loop probing a table larger than
// the processor's caches asks for the lines of the next few probes while it works on this one,
// so that their misses overlap. Swift has no such hint of its own.
static inline void recon_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
#endif

/* Helpers shared by the BPF programs. */
#ifndef TRIAGE_BITS_H
#define TRIAGE_BITS_H

/* floor(log2(v)) without loops (the verifier prefers straight code); 0 for v <= 1. The
 * log2 histograms of every probe bucket by it, so user space decodes them one way. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

#endif

/* xoshiro128** 1.1 reference (Blackman & Vigna), written out from memory,
   plus splitmix64 seeding used by resumable-state's Random. */
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>

static inline uint32_t rotl(const uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
static uint32_t s[4];

uint32_t next(void) {
	const uint32_t result = rotl(s[1] * 5, 7) * 9;
	const uint32_t t = s[1] << 9;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 11);
	return result;
}

static void jumpwith(const uint32_t *JUMP) {
	uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 32; b++) {
			if (JUMP[i] & UINT32_C(1) << b) { s0 ^= s[0]; s1 ^= s[1]; s2 ^= s[2]; s3 ^= s[3]; }
			next();
		}
	s[0] = s0; s[1] = s1; s[2] = s2; s[3] = s3;
}
void jump(void) { static const uint32_t J[] = { 0x8764000b, 0xf542d2d3, 0x6fa035c3, 0x77f2db5b }; jumpwith(J); }
void long_jump(void) { static const uint32_t J[] = { 0xb523952e, 0x0b6f099f, 0xccf5a0ef, 0x1c580662 }; jumpwith(J); }

static uint64_t sm;
uint64_t splitmix64(void) {
	uint64_t z = (sm += 0x9e3779b97f4a7c15);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
	return z ^ (z >> 31);
}
static void seed(uint64_t x) {
	sm = x;
	uint64_t a = splitmix64(), b = splitmix64();
	s[0] = (uint32_t)a; s[1] = (uint32_t)(a >> 32); s[2] = (uint32_t)b; s[3] = (uint32_t)(b >> 32);
}
static void set(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { s[0]=a; s[1]=b; s[2]=c; s[3]=d; }
static void dump(const char *label, int n) {
	printf("%s:", label);
	for (int i = 0; i < n; i++) printf(" %" PRIu32, next());
	printf("\n");
}
static void dumpstate(const char *label) { printf("%s: %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", label, s[0], s[1], s[2], s[3]); }

int main(void) {
	set(1, 2, 3, 4); dump("s=1,2,3,4 x20", 20); dumpstate("state after 20");
	set(1, 2, 3, 4); jump(); dumpstate("jump state"); dump("after jump x4", 4);
	set(1, 2, 3, 4); long_jump(); dumpstate("longjump state"); dump("after longjump x4", 4);
	set(0x9e3779b9, 0x7f4a7c15, 0xdeadbeef, 0x00000001); dump("s=0x9e3779b9,0x7f4a7c15,0xdeadbeef,1 x5", 5);
	uint64_t seeds[] = { 0, 1, 42, 9007199254740991ULL, 0x0123456789abcdefULL };
	for (int i = 0; i < 5; i++) { seed(seeds[i]); printf("seed %" PRIu64 " -> ", seeds[i]); dumpstate("state"); }
	return 0;
}

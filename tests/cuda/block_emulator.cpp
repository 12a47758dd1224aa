// Runs the source of a one-block-per-row CUDA kernel on the CPU, to check its logic
// where there is no GPU: one pthread per CUDA thread of a block, __syncthreads() as a
// barrier, blocks one after another. Built by tests/test_cuda_sources.py with
// -DBPGPU_KERNEL=\"file\": the kernel source with T typedef-ed and its extern shared
// array turned into a pointer to shared_memory.
//
// stdin: B*n inputs x, then B*n targets t. argv: B n threads scale.
// stdout: y (B*n), d (B*n), row losses (B), one number a line.
#include <pthread.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

using std::exp;
using std::fmax;
using std::log;

struct Dim { int x; };
static thread_local Dim threadIdx;
static Dim blockIdx, blockDim;
static pthread_barrier_t barrier;
static double shared_memory[4096];
static void __syncthreads() { pthread_barrier_wait(&barrier); }

#define __global__
#include BPGPU_KERNEL

struct Launch {
  int tid;
  const T *x, *t;
  T *y, *d, *rows;
  int n;
  T scale;
};

static void* thread_main(void* p) {
  Launch* a = static_cast<Launch*>(p);
  threadIdx.x = a->tid;
  bpgpu_softmax_cce(a->x, a->t, a->y, a->d, a->rows, a->n, a->scale, 1);
  return nullptr;
}

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const int B = atoi(argv[1]), n = atoi(argv[2]), threads = atoi(argv[3]);
  const T scale = static_cast<T>(atof(argv[4]));
  std::vector<T> x(B * n), t(B * n), y(B * n), d(B * n), rows(B);
  for (auto* v : {&x, &t})
    for (T& e : *v) {
      double read;
      if (scanf("%lf", &read) != 1) return 3;
      e = static_cast<T>(read);
    }
  blockDim.x = threads;
  for (int b = 0; b < B; ++b) {
    blockIdx.x = b;
    pthread_barrier_init(&barrier, nullptr, threads);
    std::vector<pthread_t> handles(threads);
    std::vector<Launch> launches(threads);
    for (int i = 0; i < threads; ++i) {
      launches[i] = {i, x.data(), t.data(), y.data(), d.data(), rows.data(), n, scale};
      pthread_create(&handles[i], nullptr, thread_main, &launches[i]);
    }
    for (auto& h : handles) pthread_join(h, nullptr);
    pthread_barrier_destroy(&barrier);
  }
  for (auto* v : {&y, &d, &rows})
    for (T e : *v) printf("%.17g\n", static_cast<double>(e));
  return 0;
}

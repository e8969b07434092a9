// One CPU flash-attention op shaped as a decode round of Qwen3-0.6B's attention (128-dim heads,
// 16 query heads over 8 KV heads, f16 K and V, laid out as llama.cpp's KV cache) in a unified KV buffer: C query tokens, one per
// sequence, and C x per_seq cells in use, the cells of the C sequences interleaved (a round appends
// one cell per sequence) or, with "blocks", one block per sequence (prompts evaluated one after
// another), each token's mask letting through its own sequence's cells only. With P
// > 0, P prompt tokens of sequence 0 follow in the same batch (a prompt chunk beside the others'
// decode tokens), each seeing sequence 0's cells and the chunk's cells up to its own. Times
// `iters` computes on `threads` threads (default 1) and prints the fastest and the median, a
// checksum of the output, and the largest difference from a double-precision reference.
//
// Built against a ggml build's headers and libraries, e.g. the native unified-KV addon's:
//   B=$(ls -d node_modules/node-llama-cpp/llama/localBuilds/linux-x64-*)
//   g++ -O2 -std=c++17 -Inode_modules/node-llama-cpp/llama/llama.cpp/ggml/include \
//       scripts/bench/fa-op.cpp -o /tmp/fa-op -L$B/bin -l:libggml-base.so -l:libggml-cpu.so -Wl,-rpath,$PWD/$B/Release
//   /tmp/fa-op 8 1088 30          # C per_seq iters [P] [threads] [n_kv] [interleaved|blocks]
//   /tmp/fa-op 7 1024 10 256 2    # a 256-token chunk beside 7 decode tokens
//   /tmp/fa-op 4 200 20 0 2 12288 # 4 decode tokens in a 12,288-cell window, the rest hidden
//   /tmp/fa-op 7 1024 10 256 2 0 blocks  # the same chunk, each sequence's cells in one block
// Two builds of libggml-cpu.so (with and without a kernel change) are compared by swapping the
// library under the same binary, in turns.
#include "ggml.h"
#include "ggml-cpu.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>
int main(int argc, char ** argv) {
    const int C = atoi(argv[1]), per_seq = atoi(argv[2]), iters = atoi(argv[3]);
    const int P = argc > 4 ? atoi(argv[4]) : 0, threads = argc > 5 ? atoi(argv[5]) : 1;
    const int D = 128, H = 16, HKV = 8, N = C + P, used = C * per_seq;
    const float scale = 1.0f / 11.3f; // about 1/sqrt(D), as llama.cpp scales the scores
    // the attention window: the cells in use, padded as llama.cpp pads it, or argv[6] when above 0 (idle cells after them)
    const int n_kv = argc > 6 && atoi(argv[6]) > 0 ? atoi(argv[6]) : ((used + P + 255) / 256) * 256;
    ggml_init_params ip = { (size_t) 1 << 30, nullptr, false };
    ggml_context * ctx = ggml_init(ip);
    ggml_tensor * q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, N, H);
    // llama.cpp's cache layout: a cell's K (V) rows of every KV head together, viewed per head as
    // llama_kv_cache::get_k does (cells n_head_kv x D apart)
    ggml_tensor * k_cache = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, D, HKV, n_kv);
    ggml_tensor * v_cache = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, D, HKV, n_kv);
    ggml_tensor * k = ggml_view_3d(ctx, k_cache, D, n_kv, HKV, k_cache->nb[2], k_cache->nb[1], 0);
    ggml_tensor * v = ggml_view_3d(ctx, v_cache, D, n_kv, HKV, v_cache->nb[2], v_cache->nb[1], 0);
    ggml_tensor * m = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, n_kv, GGML_PAD(N, 64));
    srand(1);
    for (int i = 0; i < ggml_nelements(q); i++) ((float *) q->data)[i] = (rand() / (float) RAND_MAX - 0.5f);
    for (int i = 0; i < ggml_nelements(k_cache); i++) ((ggml_fp16_t *) k_cache->data)[i] = ggml_fp32_to_fp16(rand() / (float) RAND_MAX - 0.5f);
    for (int i = 0; i < ggml_nelements(v_cache); i++) ((ggml_fp16_t *) v_cache->data)[i] = ggml_fp32_to_fp16(rand() / (float) RAND_MAX - 0.5f);
    // token t < C: sequence t's cells; token C + j: sequence 0's, then chunk cells to its own. The
    // sequences' cells interleaved (argv[7] "interleaved", the default) or one block each ("blocks":
    // prompts evaluated one after another)
    const bool blocks = argc > 7 && strcmp(argv[7], "blocks") == 0;
    auto owner = [&](int c) { return blocks ? c / per_seq : c % C; };
    auto sees = [&](int t, int c) {
        if (t < C) return c < used && owner(c) == t;
        return (c < used && owner(c) == 0) || (c >= used && c - used <= t - C);
    };
    for (int t = 0; t < m->ne[1]; t++)
        for (int c = 0; c < n_kv; c++)
            ((ggml_fp16_t *) m->data)[t * n_kv + c] = ggml_fp32_to_fp16(t < N && sees(t, c) ? 0.0f : -INFINITY);
    ggml_tensor * out = ggml_flash_attn_ext(ctx, q, k, v, m, scale, 0.0f, 0.0f);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    std::vector<double> ms;
    for (int i = 0; i < iters; i++) {
        auto t0 = std::chrono::steady_clock::now();
        ggml_graph_compute_with_ctx(ctx, gf, threads);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double sum = 0; for (int i = 0; i < ggml_nelements(out); i++) sum += ((float *) out->data)[i];
    // The reference: softmax(scale q.k) v over the cells each token sees, in double.
    auto kv = [&](ggml_tensor * cache, int cell, int h, int d) { return (double) ggml_fp16_to_fp32(((ggml_fp16_t *) cache->data)[((size_t) cell * HKV + h / (H / HKV)) * D + d]); };
    double max_err = 0;
    std::vector<double> sc(n_kv), acc(D);
    for (int t = 0; t < N; t++) for (int h = 0; h < H; h++) {
        const float * qr = (const float *) q->data + ((size_t) h * N + t) * D;
        double mx = -INFINITY, den = 0;
        for (int c = 0; c < n_kv; c++) {
            if (!sees(t, c)) continue;
            double d = 0; for (int i = 0; i < D; i++) d += qr[i] * kv(k_cache, c, h, i);
            sc[c] = d * scale; mx = std::max(mx, sc[c]);
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int c = 0; c < n_kv; c++) {
            if (!sees(t, c)) continue;
            const double w = std::exp(sc[c] - mx); den += w;
            for (int i = 0; i < D; i++) acc[i] += w * kv(v_cache, c, h, i);
        }
        const float * o = (const float *) out->data + ((size_t) t * H + h) * D;
        for (int i = 0; i < D; i++) max_err = std::max(max_err, std::fabs(acc[i] / den - o[i]));
    }
    printf("C=%d per_seq=%d P=%d n_kv=%d threads=%d%s: min %.2f ms, median %.2f ms, checksum %.6f, max |error| %.2e\n", C, per_seq, P, n_kv, threads, blocks ? " blocks" : "", ms[0], ms[ms.size() / 2], sum, max_err);
}

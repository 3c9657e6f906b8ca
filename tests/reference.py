"""A slow, obviously correct ContextPool: explicit loops over i and j, float64.

It shares only the parameters with the module under test (the two predictor
layers; the attention's projections for the per-head reference), and evaluates
the formulas of docs/design.md term by term.
"""


import torch


def reference_predictions(pool, x, padding_mask=None):
    """Pooling weights w[b][h][j] and widths sigma[b][h][i] (python lists of float64 scalars).

    The predictors read a window of ``pool.predictor_kernel`` (K) tokens: tap k of position i
    reads x at i - left + k, with left = K - 1 in causal mode and K // 2 otherwise; positions
    outside the sequence and padding read zeros. ``weight_proj.weight`` (H x K C) holds the
    taps oldest first, C columns each; one row per head.
    """
    x = x.double()
    T, B, C = x.shape
    K, H = pool.predictor_kernel, pool.heads
    left = K - 1 if pool.causal else K // 2
    w_lin = pool.weight_proj.weight.double().view(H, K, C), pool.weight_proj.bias.double()
    s_lin = pool.size_proj.weight.double().view(H, K, C), pool.size_proj.bias.double()

    def read(b, j):
        if j < 0 or j >= T or (padding_mask is not None and bool(padding_mask[b, j])):
            return torch.zeros(C, dtype=torch.float64)
        return x[j, b]

    weights = [[[None] * T for _ in range(H)] for _ in range(B)]
    sigmas = [[[None] * T for _ in range(H)] for _ in range(B)]
    for b in range(B):
        for h in range(H):
            for j in range(T):
                w_logit, s_logit = w_lin[1][h], s_lin[1][h]
                for k in range(K):
                    w_logit = w_logit + read(b, j - left + k) @ w_lin[0][h, k]
                    s_logit = s_logit + read(b, j - left + k) @ s_lin[0][h, k]
                w = torch.sigmoid(w_logit)
                if padding_mask is not None and bool(padding_mask[b, j]):
                    w = w * 0
                weights[b][h][j] = w
                size = pool.max_size * torch.sigmoid(s_logit)
                sigmas[b][h][j] = torch.clamp(size / 2, min=1e-3)
    return weights, sigmas


def reference_context_pool(pool, x, padding_mask=None, values=None):
    """y[i, b, h] = sum_j v[j, b, h] w[b, h, j] g_i(j) (/ sum_j w[b, h, j] g_i(j) for 'mean').

    Args:
        pool: a fairseq_plugins ContextPool (its predictors are reused, in float64).
        x: T x B x C tensor, what the predictors read.
        padding_mask: B x T bool, True at padding.
        values: T x B x H x F, what head h pools (default: x itself, one head).
    Returns:
        float64 tensor shaped as ``values`` (T x B x C without it).
    """
    x = x.double()
    plain = values is None
    values = x.unsqueeze(2) if plain else values.double()
    T, B, H, F = values.shape
    weights, sigmas = reference_predictions(pool, x, padding_mask)
    out = torch.zeros(T, B, H, F, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                total = torch.zeros(F, dtype=torch.float64)
                mass = torch.zeros((), dtype=torch.float64)
                for j in range(T):
                    if abs(j - i) > pool.max_size or (pool.causal and j > i):
                        continue
                    g = torch.exp(-((j - i) ** 2) / (2 * sigmas[b][h][i] ** 2))
                    total = total + values[j, b, h] * weights[b][h][j] * g
                    mass = mass + weights[b][h][j] * g
                if pool.normalize == "mean":
                    total = total / torch.clamp(mass, min=1e-6)
                out[i, b, h] = total
    return out[:, :, 0] if plain else out


def reference_pooled_attention(attn, x, padding_mask=None):
    """ContextPoolSelfAttention with one pool per head group, term by term, float64.

    Head group g of ``attn.pool`` pools the projections of its attention heads:
    q = pool(x W_q^T + b_q) (token queries with inputs 'kv'), k = pool(x W_k^T + b_k),
    v = pool(x W_v^T + b_v); then softmax(q k^T / sqrt(d)) v per head (causal if the pool is),
    padding keys left out, and the output projection. No dropout.

    Args:
        x: T x B x C; padding_mask: B x T bool, True at padding.
    Returns:
        T x B x C float64.
    """
    x = x.double()
    T, B, C = x.shape
    heads, groups, d = attn.num_heads, attn.pool.heads, attn.head_dim

    def project(linear):
        y = x @ linear.weight.double().t() + linear.bias.double()
        return y.view(T, B, groups, heads // groups * d)

    q, k, v = (project(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
    if attn.pool_inputs == "qkv":
        q = reference_context_pool(attn.pool, x, padding_mask, q)
    k = reference_context_pool(attn.pool, x, padding_mask, k)
    v = reference_context_pool(attn.pool, x, padding_mask, v)
    q, k, v = (t.reshape(T, B, heads, d) for t in (q, k, v))
    out = torch.zeros(T, B, heads, d, dtype=torch.float64)
    for b in range(B):
        for h in range(heads):
            for i in range(T):
                scores = torch.full((T,), float("-inf"), dtype=torch.float64)
                for j in range(T):
                    masked = attn.pool.causal and j > i
                    masked = masked or (padding_mask is not None and bool(padding_mask[b, j]))
                    if not masked:
                        scores[j] = q[i, b, h] @ k[j, b, h] / d**0.5
                probs = torch.softmax(scores, 0)
                out[i, b, h] = sum(probs[j] * v[j, b, h] for j in range(T))
    out_proj = attn.out_proj.weight.double(), attn.out_proj.bias.double()
    return out.view(T, B, C) @ out_proj[0].t() + out_proj[1]


def make_padding_mask(lengths, T, left_pad=False):
    """B x T bool mask, True at padding, for sequences of the given lengths."""
    mask = torch.zeros(len(lengths), T, dtype=torch.bool)
    for b, n in enumerate(lengths):
        if left_pad:
            mask[b, : T - n] = True
        else:
            mask[b, n:] = True
    return mask



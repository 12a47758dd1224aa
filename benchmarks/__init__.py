"""bpgpu's benchmarks: bpgpu and its peers trained side by side in one process.

Run ``python -m benchmarks`` from the repository root, or ``bpgpu bench`` anywhere.
"""

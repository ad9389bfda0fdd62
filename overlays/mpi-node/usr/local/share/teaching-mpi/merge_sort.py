"""Parallel merge sort with mpi4py.

Rank 0 makes an array of random numbers and scatters one part to every rank; each rank
merge-sorts its part; rank 0 gathers the sorted parts and merges them into one array,
then checks it.

    mpirun -np 8 python3 merge_sort.py 1000000
"""
import random
import socket
import sys

from mpi4py import MPI


def merge(a, b):
    """The sorted merge of two sorted lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


def merge_sort(xs):
    """Sorts a list by splitting it in halves, sorting each, and merging them."""
    if len(xs) <= 1:
        return xs
    mid = len(xs) // 2
    return merge(merge_sort(xs[:mid]), merge_sort(xs[mid:]))


comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000

if rank == 0:
    data = [random.randrange(1_000_000) for _ in range(n)]
    parts = [data[i::size] for i in range(size)]
else:
    parts = None
part = merge_sort(comm.scatter(parts, root=0))
print(f"rank {rank} on {socket.gethostname()}: sorted {len(part)} numbers", flush=True)
parts = comm.gather(part, root=0)

if rank == 0:
    result = []
    for p in parts:
        result = merge(result, p)
    ok = result == sorted(data)
    print(f"merged {len(result)} numbers from {size} ranks: {'sorted' if ok else 'NOT sorted'}")
    print(f"first {result[:5]} ... last {result[-5:]}")
    sys.exit(0 if ok else 1)

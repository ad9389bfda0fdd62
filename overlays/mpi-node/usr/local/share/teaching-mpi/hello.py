"""Hello from every rank: which rank, of how many, on which node.

    mpirun --map-by node -np 4 python3 hello.py
"""
import socket

from mpi4py import MPI

comm = MPI.COMM_WORLD
print(f"hello from rank {comm.Get_rank()} of {comm.Get_size()} on {socket.gethostname()}", flush=True)

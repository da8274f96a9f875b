"""Start a daskseg Dask cluster on SLURM with dask-jobqueue, or print the job script it would submit.

    python deploy/slurm/launch.py --jobs 8 --queue cpu --print-job-script   # inspect, submit nothing
    python deploy/slurm/launch.py --jobs 8 --queue cpu                      # run until Ctrl-C
    python deploy/slurm/launch.py --jobs 2 --queue gpu --gpus 1             # GPU workers (resource GPU=1)

The scheduler runs where this script runs and listens on the given interface only; point
`daskseg predict --scheduler ADDRESS` / `daskseg train --scheduler ADDRESS` at the printed address.
Anyone who can reach the scheduler can run code on the workers: keep it on a trusted network or
pass --tls-dir with certificates (distributed's Security).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
logger = logging.getLogger("daskseg.deploy.slurm")


def make_cluster(args: argparse.Namespace):
    """A SLURMCluster configured from jobqueue.yaml plus the command-line overrides."""
    import dask.config
    from dask_jobqueue import SLURMCluster

    with open(args.config) as f:
        dask.config.update(dask.config.config, yaml.safe_load(f), priority="new")

    worker_args = []
    directives = []
    processes = None
    if args.gpus:
        # one worker process per GPU job, holding the GPU(s) as a resource that predict/train tasks ask for
        worker_args += ["--resources", f"GPU={args.gpus}"]
        directives.append(f"--gres=gpu:{args.gpus}")
        processes = 1
    kwargs = dict(
        queue=args.queue,
        account=args.account,
        cores=args.cores,
        processes=processes,
        memory=args.memory,
        walltime=args.walltime,
        worker_extra_args=worker_args,
        job_extra_directives=directives,
        scheduler_options={"host": args.host, "dashboard_address": f"{args.host}:{args.dashboard_port}"},
    )
    if args.tls_dir:
        from distributed.security import Security

        kwargs["security"] = Security(
            tls_ca_file=os.path.join(args.tls_dir, "ca.pem"),
            tls_client_cert=os.path.join(args.tls_dir, "cert.pem"),
            tls_client_key=os.path.join(args.tls_dir, "key.pem"),
            tls_scheduler_cert=os.path.join(args.tls_dir, "cert.pem"),
            tls_scheduler_key=os.path.join(args.tls_dir, "key.pem"),
            tls_worker_cert=os.path.join(args.tls_dir, "cert.pem"),
            tls_worker_key=os.path.join(args.tls_dir, "key.pem"),
            require_encryption=True,
        )
        kwargs["protocol"] = "tls://"
    return SLURMCluster(**{k: v for k, v in kwargs.items() if v is not None})


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(HERE, "jobqueue.yaml"))
    p.add_argument("--jobs", type=int, default=4, help="number of SLURM jobs (= Dask workers)")
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--cores", type=int, default=None)
    p.add_argument("--memory", default=None)
    p.add_argument("--walltime", default=None)
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job; workers then declare GPU=N")
    p.add_argument("--host", default="127.0.0.1", help="scheduler interface address (a cluster-internal IP)")
    p.add_argument("--dashboard-port", type=int, default=8787)
    p.add_argument("--tls-dir", default=None, help="directory with ca.pem, cert.pem, key.pem")
    p.add_argument("--print-job-script", action="store_true", help="print the job script and exit")
    return p.parse_args(argv)


def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO)
    args = parse_args(argv)
    cluster = make_cluster(args)
    if args.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return
    cluster.scale(jobs=args.jobs)
    print(f"scheduler: {cluster.scheduler_address}\ndashboard: {cluster.dashboard_link}")
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()

"""Built-in workloads, written against the public interface of ``jaxexp.workload``."""

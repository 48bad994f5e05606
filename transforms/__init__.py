"""Python transforms of the demo pipelines. Each takes LazyFrames by source name, returns one."""

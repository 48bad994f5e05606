"""Python transforms; a pipeline names one as `transform: {python: transforms.MODULE:FUNCTION}`."""

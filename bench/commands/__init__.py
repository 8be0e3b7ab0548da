"""One module per `tppbench` sub-command of the measuring package."""

.PHONY: demo test bench
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
bench:
	.venv/bin/python benchmarks/import_time.py

# tempsweep operator image: build a wheel, install it into a clean slim image, run as non-root.
# Works with readOnlyRootFilesystem (writes only to /tmp, an emptyDir in the Deployment).

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl \
    && rm -rf /wheels
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["tempsweep", "operator"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz"]

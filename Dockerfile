FROM python:3.11-slim
WORKDIR /srv
COPY requirements.lock pyproject.toml README.md alembic.ini ./
RUN pip install --no-cache-dir -r requirements.lock
COPY app ./app
COPY migrations ./migrations
EXPOSE 8000
CMD ["python", "-m", "app", "serve", "--no-migrate"]

/**
 * Additions to the types dicom-parser ships (node_modules/dicom-parser/index.d.ts), for what parser.ts uses:
 * the DataSet class (typed there only as an interface), and the dataset parsers' options as the library
 * reads them (untilTag optional; vrCallback may return undefined for "unknown").
 */
import type { ByteArray, ByteArrayParser, ByteStream, DataSet as DataSetType, Element } from 'dicom-parser';

declare module 'dicom-parser' {
  export const DataSet: new (byteArrayParser: ByteArrayParser, byteArray: ByteArray, elements: Record<string, Element>) => DataSetType;

  type VrCallback = (tag: string) => string | undefined;

  export function parseDicomDataSetExplicit(dataSet: DataSetType, byteStream: ByteStream, maxPosition?: number, options?: { untilTag?: string | undefined }): void;
  export function parseDicomDataSetImplicit(
    dataSet: DataSetType,
    byteStream: ByteStream,
    maxPosition?: number,
    options?: { untilTag?: string | undefined; vrCallback?: VrCallback },
  ): void;
  export function readSequenceItemsImplicit(byteStream: ByteStream, element: Element, vrCallback?: VrCallback): void;
}
